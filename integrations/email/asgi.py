"""`POST /integrations/email/inbound/raw/` answered at the ASGI level, before Django's handler.

Measured on the benchmark (docs/benchmarks-inbound.md): through Django, a post cost more in the
request machinery than in storing the message. The middleware stack holds sync-only middleware,
so every request, async view or not, hopped onto the single sync thread and back; sessions,
CSRF, messages and authentication were built for a route that uses none of them. This app reads
the body, checks the size and the signature and stores the message through the same function as
the Django view (`views.accept_raw`), so the answers are the same bytes; anything else (another
path, another method) goes to Django untouched.

What the route gives up by skipping Django: the Host header is not checked against
ALLOWED_HOSTS (the HMAC of the body authenticates the post; the answer names no host), and the
security middleware's page headers are not added to its JSON (it is never shown in a browser;
`nosniff` is set here).
"""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from integrations.email.views import accept_raw

PATH = "/integrations/email/inbound/raw/"
Scope = dict[str, Any]
Receive = Any
Send = Any


class ClientGone(Exception):
    """The sender hung up before its whole message arrived."""


class RawInboundApp:
    """Serves the raw inbound route itself and hands every other request to `fallback`."""

    def __init__(self, fallback: Any) -> None:
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.fallback(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        limit = settings.TIDINGS_INBOUND_MAX_BYTES
        try:
            body = await _read_body(receive, _declared_length(headers), limit)
        except ClientGone:
            return  # nobody to answer, nothing stored
        signature = headers.get(b"x-tidings-signature", b"").decode("latin-1")
        in_pool = settings.TIDINGS_INBOUND_ACCEPT_IN_POOL
        status, answer = await sync_to_async(_accept, thread_sensitive=not in_pool)(body, signature)
        payload = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"x-content-type-options", b"nosniff"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _declared_length(headers: dict[bytes, bytes]) -> int:
    try:
        return int(headers.get(b"content-length", b"0"))
    except ValueError:
        return 0


async def _read_body(receive: Receive, declared: int, limit: int) -> bytes | None:
    """The body, or None when it is (or is announced to be) larger than `limit`; an announced
    1 GB is refused without reading it."""
    if declared > limit:
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _accept(body: bytes | None, signature: str) -> tuple[int, dict[str, object]]:
    if settings.TIDINGS_INBOUND_ACCEPT_IN_POOL:
        # A thread of the pool: it keeps its connection between posts (`views.accept_raw`).
        return accept_raw(body, signature)
    # The thread every sync view shares: what Django's handler does around a request, a
    # connection that broke or aged out is not reused, and none is held past its age.
    close_old_connections()
    try:
        return accept_raw(body, signature)
    finally:
        close_old_connections()
