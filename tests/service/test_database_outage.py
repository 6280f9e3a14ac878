"""PostgreSQL out of reach of a running web process: requests fail cleanly (503, Retry-After,
nothing written) and the process heals by itself when the database is back (RELIABILITY.md,
"Restarting PostgreSQL"). WebSockets close with 4503 (try again later), not 1011 or a 500
handshake; a ticket that could not be redeemed is not spent, and resuming from a cursor after the
outage gets what was written since.

The outage is real: daphne reaches PostgreSQL through a TCP relay that the test cuts (every
connection closed, new ones refused) and restores, as a database restart or a network partition
would. The server's pool waits 2 s for a connection instead of 30, so that the test is quick.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from config.middleware import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS
from feed.models import Activity
from realtime.auth import CLOSE_TRY_AGAIN
from tests import servers, services
from tests.conftest import Cast
from tests.service.conftest import Api, Sockets, StartServer, assert_activity_event, in_db_thread
from tests.service.test_faults import BrowserSession, subscribed

pytestmark = pytest.mark.service

POOL_TIMEOUT_SECONDS = 2
HEAL_WITHIN_SECONDS = 60.0  # psycopg_pool retries a failed connect with a growing back-off


class CuttableRelay:
    """A TCP relay to PostgreSQL: `cut` closes every connection and refuses new ones; `restore`
    listens again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = servers.free_port()
        self.links: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.is_cut = True

    def restore(self) -> None:
        listener = socket.create_server((servers.HOST, self.port))
        with self.lock:
            self.is_cut = False
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self.lock:
            self.is_cut = True
        if self.listener is not None:
            _close(self.listener)  # shutdown wakes the thread blocked in accept()
            self.listener = None
        with self.lock:
            links, self.links = self.links, set()
        for link in links:
            _close(link)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                if self.is_cut:  # accepted just before the cut: it must not outlive it
                    _close(client)
                    _close(upstream)
                    return
                self.links.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture
def relay() -> Iterator[CuttableRelay]:
    services.require_postgres()
    db = connection.settings_dict
    relay = CuttableRelay((db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)))
    relay.restore()
    yield relay
    relay.cut()


def _request(
    server: Any, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    sent = {"Accept": "application/json", **(headers or {})}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        conn.request(method, path, body=payload, headers=sent)
        response = conn.getresponse()
        text = response.read().decode(errors="replace")
    finally:
        conn.close()
    return response.status, dict(response.headers.items()), text


async def test_requests_get_503_while_postgresql_is_away_and_work_again_after(
    transactional_db: None,
    cast: Cast,
    relay: CuttableRelay,
    start_server: StartServer,
    sockets: Sockets,
) -> None:
    direct = services.database_url_for_subprocess()
    relayed = direct.replace(
        f"@{connection.settings_dict.get('HOST') or '127.0.0.1'}:"
        f"{connection.settings_dict.get('PORT') or 5432}/",
        f"@{servers.HOST}:{relay.port}/",
    )
    assert relayed != direct
    server = start_server(
        "db-away",
        redis_url=services.require_redis(),
        DATABASE_URL=relayed,
        TIDINGS_DB_POOL_TIMEOUT=str(POOL_TIMEOUT_SECONDS),
    )
    token = await in_db_thread(lambda: Token.objects.create(user=cast.owner).key)
    auth = {"Authorization": f"Token {token}"}
    path = f"/api/v1/accounts/{cast.account.pk}/activities/"
    browser = BrowserSession(server)
    await asyncio.to_thread(browser.log_in, cast.owner.username)
    status, _, _ = await asyncio.to_thread(
        _request, server, "GET", "/accounts/", headers=browser.cookie_header()
    )
    assert status == 200
    api, stream = Api(server), f"account:{cast.account.pk}"
    live = await sockets.open(ticket=await api.ticket(token), server=server)
    cursor = await subscribed(live, stream)
    spare_ticket = await api.ticket(token)

    relay.cut()
    started = time.monotonic()
    status, headers, text = await asyncio.to_thread(
        _request, server, "POST", path, body={"body": "Written while away"}, headers=auth
    )
    took = time.monotonic() - started
    assert status == 503, text[:500]
    assert json.loads(text) == {"detail": DATABASE_UNAVAILABLE, "code": "database_unavailable"}
    assert headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert took < POOL_TIMEOUT_SECONDS + 5, f"the answer took {took:.1f} s"

    status, headers, page = await asyncio.to_thread(
        _request, server, "GET", "/accounts/", headers={**browser.cookie_header(), "Accept": "*/*"}
    )
    assert status == 503, page[:500]
    assert headers["Content-Type"].startswith("text/html")
    assert "briefly unavailable" in page and DATABASE_UNAVAILABLE in page
    assert headers["Retry-After"] == str(RETRY_AFTER_SECONDS)

    # WebSockets: a new connection by ticket or by cookie, and a subscribe on an open one.
    by_ticket = await sockets.open(ticket=spare_ticket, server=server)
    assert await by_ticket.close_code() == CLOSE_TRY_AGAIN
    by_cookie = await sockets.open(
        origin=server.http_url, headers=browser.cookie_header(), server=server
    )
    assert await by_cookie.close_code() == CLOSE_TRY_AGAIN
    await live.ping()  # no database needed: the connection is still served
    await live.send({"op": "subscribe", "stream": "home", "since": None})
    assert await live.close_code() == CLOSE_TRY_AGAIN

    relay.restore()
    deadline = time.monotonic() + HEAL_WITHIN_SECONDS
    while True:  # the pool reconnects on its own schedule: each try is a real request
        status, _, text = await asyncio.to_thread(
            _request, server, "POST", path, body={"body": "Written after"}, headers=auth
        )
        if status == 201:
            break
        assert status == 503, text[:500]
        assert time.monotonic() < deadline, "the server did not heal after the database came back"
        await asyncio.sleep(0.2)  # the pool reconnects on its own back-off; nothing to await
    bodies = await in_db_thread(
        lambda: list(Activity.objects.filter(account=cast.account).values_list("body", flat=True))
    )
    assert "Written after" in bodies and "Written while away" not in bodies

    # The ticket of the refused connect was not spent; resuming from the cursor gets the post.
    resumed = await sockets.open(ticket=spare_ticket, server=server)
    await subscribed(resumed, stream, since=cursor)
    frame = await resumed.recv()
    assert assert_activity_event(frame, stream) > int(cursor)
    assert frame["data"]["body"] == "Written after"
    status, _, _ = await asyncio.to_thread(
        _request, server, "GET", "/accounts/", headers=browser.cookie_header()
    )
    assert status == 200
