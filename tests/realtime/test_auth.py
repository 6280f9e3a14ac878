"""Who is connecting, decided before the consumer (realtime/auth.py), seen from the inside: what
the consumer is handed for a ticket and for a browser's session."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from crm.models import User
from realtime.auth import RealtimeAuthStack
from realtime.tickets import issue_ticket
from tests.conftest import Cast

pytestmark = pytest.mark.django_db(transaction=True)


class Inner:
    """The application behind the gate: keeps what it was called with."""

    scope: dict[str, Any]
    send: Any

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scope, self.send = scope, send


async def server_send(message: dict[str, Any]) -> None:
    """Stands for the server's `send` (daphne hands a partial of its own)."""


async def receive() -> dict[str, Any]:
    return {"type": "websocket.connect"}


def scope(*headers: tuple[bytes, bytes], query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "websocket",
        "path": "/ws/",
        "query_string": query,
        "headers": [(b"host", b"testserver"), *headers],
    }


@database_sync_to_async
def session_cookie(user: User) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def test_a_ticket_connection_gets_the_tickets_user_and_the_servers_own_send(
    cast: Cast,
) -> None:
    """No session and no wrapper around `send`: every frame goes straight to the server (the
    session wrapper's work on each frame was a tenth of a fan-out, docs/benchmarks.md)."""
    ticket, _ = await database_sync_to_async(issue_ticket)(user=cast.owner)
    inner = Inner()
    await RealtimeAuthStack(inner)(scope(query=f"ticket={ticket}".encode()), receive, server_send)
    assert inner.send is server_send
    assert inner.scope["user"] == cast.owner
    assert inner.scope["auth_method"] == "ticket"
    assert "session" not in inner.scope and "realtime_reject" not in inner.scope


async def test_a_browser_connection_gets_its_session_user_and_the_servers_own_send(
    cast: Cast,
) -> None:
    """A WebSocket never sends `http.response.start`, the one message the session wrapper saves
    the session on, so the server's `send` is handed on as it came."""
    cookie = await session_cookie(cast.owner)
    inner = Inner()
    headers = ((b"cookie", cookie), (b"origin", b"http://testserver"))
    await RealtimeAuthStack(inner)(scope(*headers), receive, server_send)
    assert inner.send is server_send
    assert inner.scope["user"] == cast.owner
    assert inner.scope["auth_method"] == "session"
    assert inner.scope["session"].session_key
    assert "realtime_reject" not in inner.scope
