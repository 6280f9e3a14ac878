"""The raw inbound route as daphne serves it: `config.asgi.application`, where
`integrations.email.asgi` answers it before Django's handler. Same answers as the Django view
(tests/integrations/test_raw_endpoint.py); other requests still reach Django."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from config.asgi import application
from integrations.models import InboundEmail
from tests.integrations.messages import email, signature

PATH = "/integrations/email/inbound/raw/"


@pytest.fixture(autouse=True)
async def _close_thread_connections() -> AsyncIterator[None]:
    """The route stores on asgiref's thread for thread-sensitive work, whose connection would
    outlive the test (and keep the test database from being dropped)."""
    yield
    await sync_to_async(connections.close_all, thread_sensitive=True)()


async def _call(
    method: str, path: str, body: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[int, dict[str, bytes], bytes]:
    """One HTTP request through the ASGI application, the body in two chunks."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    half = len(body) // 2
    incoming = [
        {"type": "http.request", "body": body[:half], "more_body": True},
        {"type": "http.request", "body": body[half:], "more_body": False},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        await asyncio.Event().wait()  # the client stays connected until the answer is sent
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await application(scope, receive, send)
    start = sent[0]
    content = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), content


def _signed(raw: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"message/rfc822"),
        (b"content-length", str(len(raw)).encode()),
        (b"x-tidings-signature", signature(raw).encode()),
    ]


@pytest.mark.django_db(transaction=True)
async def test_a_signed_post_is_stored_then_a_repeat_is_a_duplicate() -> None:
    raw = email(message_id="<asgi@mail.acme.example>")
    status, headers, body = await _call("POST", PATH, raw, _signed(raw))
    assert status == 202 and headers[b"content-type"] == b"application/json"
    answer = json.loads(body)
    assert answer["status"] == "queued"
    stored = await InboundEmail.objects.aget(pk=answer["id"])
    assert stored.raw_bytes == raw and stored.status == InboundEmail.Status.QUEUED
    status, _, body = await _call("POST", PATH, raw, _signed(raw))
    assert (status, json.loads(body)) == (200, {"id": answer["id"], "status": "duplicate"})


@pytest.mark.django_db(transaction=True)
async def test_a_bad_signature_an_empty_body_and_an_oversized_one_are_refused(
    settings: Any,
) -> None:
    raw = email()
    forged = [*_signed(raw)[:2], (b"x-tidings-signature", signature(b"other").encode())]
    assert (await _call("POST", PATH, raw, forged))[0] == 403
    not_ascii = [*_signed(raw)[:2], (b"x-tidings-signature", "sha256=é".encode())]
    assert (await _call("POST", PATH, raw, not_ascii))[0] == 403
    assert (await _call("POST", PATH, b" \r\n", _signed(b" \r\n")))[0] == 400
    settings.TIDINGS_INBOUND_MAX_BYTES = 1024
    big = email(body="x" * 4000)
    status, _, body = await _call("POST", PATH, big, _signed(big))
    assert status == 413 and b"larger than 1024 bytes" in body
    # Announced too large: refused on the header alone, whatever arrives.
    announced = [(b"content-length", b"999999999"), *_signed(raw)[2:]]
    assert (await _call("POST", PATH, raw, announced))[0] == 413
    assert await InboundEmail.objects.acount() == 0


@pytest.mark.django_db(transaction=True)
async def test_other_methods_and_paths_still_reach_django() -> None:
    status, _, _ = await _call("GET", PATH, b"", [])
    assert status == 405  # Django's require_POST, as before
    status, _, _ = await _call("POST", "/integrations/email/inbound/raw", b"", [])
    assert status == 301  # the path without its slash: Django's CommonMiddleware
