"""Who is on the other end of a WebSocket, decided before the handshake is accepted.

Two ways in: a browser with its session cookie, which must come from an allowed Origin
(cross-site WebSocket hijacking otherwise rides the cookie), or an API client with a single-use
ticket, which may send no Origin but never a foreign one. The verdict is left in the scope for the
consumer, which closes with 4403 (origin) or 4401 (no user) without reading a single message,
or with 4503 (try again later) when the database could not say who it is.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.auth import AuthMiddleware
from channels.sessions import CookieMiddleware, InstanceSessionWrapper, SessionMiddleware
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.http.request import split_domain_port, validate_host

from config.dbfaults import is_database_unavailable
from realtime.db import DATABASE_AWAY, in_worker
from realtime.tickets import redeem_ticket

CLOSE_UNAUTHENTICATED = 4401
CLOSE_BAD_ORIGIN = 4403
# PostgreSQL was out of reach: reconnect later (HTTP's 503, as 4401 and 4403 mirror 401 and 403;
# RFC 6455's own 1013 is refused by autobahn, which lets a server send only 1000 and 3000-4999).
# A ticket is not spent by a redemption that could not run: the client may reconnect with it.
CLOSE_TRY_AGAIN = 4503
log = logging.getLogger(__name__)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_triple(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    return parts.scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme]


def is_origin_allowed(scope: dict[str, Any], origin: str) -> bool:
    """Same scheme, host and port as the page the socket belongs to, or a configured origin."""
    claimed = _origin_triple(origin)
    if claimed is None:
        return False
    if any(claimed == _origin_triple(allowed) for allowed in settings.TIDINGS_ALLOWED_ORIGINS):
        return True
    headers = dict(scope.get("headers", []))
    host = headers.get(b"host", b"").decode("latin-1")
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    scheme = "https" if scope.get("scheme") == "wss" else "http"
    return claimed == _origin_triple(f"{scheme}://{host}")


class WebSocketSessionMiddleware(SessionMiddleware):
    """channels' SessionMiddleware, without its wrapper around `send`.

    The wrapper saves a modified session when an `http.response.start` goes out, a message a
    WebSocket never sends, yet it ran on every frame: profiled on the real-time benchmark, its
    lazy-object lookups were a tenth of the time a post's fan-out took per socket.
    """

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        wrapper = InstanceSessionWrapper(scope, send)
        await wrapper.resolve_session()
        return await self.inner(wrapper.scope, receive, send)


class WebSocketAuthMiddleware(AuthMiddleware):
    """channels' AuthMiddleware; a session user that cannot be read because PostgreSQL is away
    makes the connection close with CLOSE_TRY_AGAIN instead of failing the handshake with 500."""

    async def resolve_scope(self, scope: dict[str, Any]) -> None:
        try:
            await super().resolve_scope(scope)
        except DATABASE_AWAY as error:
            if not is_database_unavailable(error):
                raise
            log.warning("WebSocket connect: the session user could not be read: %s", error)
            scope["user"]._wrapped = AnonymousUser()
            scope["realtime_reject"] = CLOSE_TRY_AGAIN


class SessionGate:
    """Inner middleware of a browser's connection: runs after the session user is resolved."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        scope = dict(scope)
        scope["auth_method"] = "session"
        origin = _origin_of(scope)
        if origin is None or not is_origin_allowed(scope, origin):
            scope["realtime_reject"] = CLOSE_BAD_ORIGIN
        elif scope.get("realtime_reject"):
            pass  # the session's user could not be read (WebSocketAuthMiddleware)
        elif not scope["user"].is_authenticated or not scope["user"].is_active:
            scope["realtime_reject"] = CLOSE_UNAUTHENTICATED
        return await self.app(scope, receive, send)


class RealtimeGate:
    """Decides who is connecting: a ticket in the query string, else the session cookie.

    A ticket connection skips the cookie, session and user middleware altogether: its user is the
    ticket's, and each of them cost a trip to Django's one thread-sensitive thread (resolving an
    anonymous session user) per connect, and objects held for the socket's lifetime.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        session_user = WebSocketAuthMiddleware(SessionGate(app))
        self.browser = CookieMiddleware(WebSocketSessionMiddleware(session_user))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        tickets = query.get("ticket")
        if not tickets:
            return await self.browser(scope, receive, send)
        scope = dict(scope)
        scope["auth_method"] = "ticket"
        # Off the thread-sensitive thread: a reconnect storm redeems tickets in parallel.
        try:
            user = await in_worker(redeem_ticket)(tickets[0])
            away = False
        except DATABASE_AWAY as error:
            if not is_database_unavailable(error):
                raise
            log.warning("WebSocket connect: the ticket could not be redeemed: %s", error)
            user, away = None, True
        scope["user"] = user or AnonymousUser()
        origin = _origin_of(scope)
        if origin is not None and not is_origin_allowed(scope, origin):
            scope["realtime_reject"] = CLOSE_BAD_ORIGIN
        elif away:
            scope["realtime_reject"] = CLOSE_TRY_AGAIN
        elif user is None:
            scope["realtime_reject"] = CLOSE_UNAUTHENTICATED
        return await self.app(scope, receive, send)


def _origin_of(scope: dict[str, Any]) -> str | None:
    raw = dict(scope.get("headers", [])).get(b"origin")
    return raw.decode("latin-1") if raw is not None else None


def RealtimeAuthStack(inner: Any) -> Any:
    return RealtimeGate(inner)


def connection_is_valid(scope: dict[str, Any]) -> bool:
    """Whether the connection's user is still active and, for a browser, still logged in."""
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        return False
    if not get_user_model().objects.filter(pk=user.pk, is_active=True).exists():
        return False
    if scope.get("auth_method") == "session":
        session = scope.get("session")
        key = getattr(session, "session_key", None)
        if session is None or not key or not session.exists(key):  # logged out or expired
            return False
    return True
