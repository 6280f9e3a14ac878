"""Service tests: the real stack (daphne, PostgreSQL, Redis) in separate processes.

`daphne_server` starts one daphne for the whole session, on the pytest-django test database (so
tests must commit their rows: `transactional_db`) and on the configured Redis as channel layer;
`start_server` starts more for one test (a second web process, one on another Redis). All run the
production command line (tests/servers.py). Without PostgreSQL or Redis the tests skip loudly; with
`CI` set they fail (tests/services.py).

The test process talks to the server over the network: HTTP through `http.client` (run in a
thread from async tests) and WebSockets through the `websockets` client. Rows are made by
synchronous fixtures (`cast`) before; an async test that must change the database while sockets
are open (revoke a grant, deactivate a user) does it through `in_db_thread`, never on the loop.

When a test here fails, the tail of each server's output (stdout and stderr) is attached to its
report.
"""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest
from django import db
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from tests import servers, services
from tests.servers import WebServer

T = TypeVar("T")

# Upper bound for one expected frame or HTTP answer. Generous: it is never waited out when the
# system works, it only turns a hang into a clear failure.
RECV_SECONDS = 10.0

# The servers of the session and of the running test, by label, for the failure report.
_SESSION_SERVERS = pytest.StashKey[dict[str, WebServer]]()
_TEST_SERVERS = pytest.StashKey[dict[str, WebServer]]()

# The name these tests have always used for a server.
LiveServer = WebServer


def service_env(var_dir: Path, redis_url: str, **extra: str) -> dict[str, str]:
    """A web process's environment on the test database and the given Redis."""
    return servers.server_env(
        var_dir,
        database_url=services.database_url_for_subprocess(),
        redis_url=redis_url,
        **extra,
    )


@pytest.fixture(scope="session")
def daphne_server(
    request: pytest.FixtureRequest,
    django_db_setup: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    """One daphne for the session, serving config.asgi on the test database and real Redis.

    Depends on `django_db_setup` so that the test database exists before the server starts and is
    dropped only after the server (and its connections) are gone.
    """
    services.require_postgres()
    redis_url = services.require_redis()
    workdir = tmp_path_factory.mktemp("daphne")
    var_dir = workdir / "var"
    var_dir.mkdir()
    try:
        server = servers.start_web(service_env(var_dir, redis_url), workdir)
    except servers.ServerDidNotStart as error:
        pytest.fail(str(error), pytrace=False)
    request.config.stash.setdefault(_SESSION_SERVERS, {})["daphne"] = server
    try:
        yield server
    finally:
        del request.config.stash[_SESSION_SERVERS]["daphne"]
        server.stop()


StartServer = Callable[..., WebServer]


@pytest.fixture
def start_server(
    request: pytest.FixtureRequest, django_db_setup: None, tmp_path: Path
) -> Iterator[StartServer]:
    """Starts more web processes for one test: `start_server(label, redis_url=..., **env)`.

    Each is on the test database, with its own var folder and log; all are stopped when the test
    ends, and their output is attached to its report if it fails.
    """
    services.require_postgres()
    started = request.node.stash.setdefault(_TEST_SERVERS, {})

    def start(label: str, *, redis_url: str, tier: str = "web", **extra: str) -> WebServer:
        assert label not in started, f"two servers labelled {label!r}"
        var_dir = tmp_path / label / "var"
        var_dir.mkdir(parents=True)
        env = service_env(var_dir, redis_url, **extra)
        try:
            server = servers.start_web(env, tmp_path / label, name=label, tier=tier)
        except servers.ServerDidNotStart as error:
            pytest.fail(str(error), pytrace=False)
        started[label] = server
        return server

    try:
        yield start
    finally:
        for server in started.values():
            server.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        shown = {
            **item.config.stash.get(_SESSION_SERVERS, {}),
            **item.stash.get(_TEST_SERVERS, {}),
        }
        for label, server in shown.items():
            report.sections.append((f"{label} output (stdout+stderr, tail)", server.log_tail()))
    return report


# --- the database from async tests -----------------------------------------------------------


async def in_db_thread(function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run ORM code from an async test: in a worker thread, whose connection is closed after.

    A connection left open in a worker thread would keep the test database from being dropped.
    """

    def run() -> T:
        try:
            return function(*args, **kwargs)
        finally:
            db.connections.close_all()

    return await asyncio.to_thread(run)


# --- clients ----------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: Any


class Api:
    """Blocking JSON calls to the server; `call` runs one in a thread for async tests."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server

    def request(
        self, method: str, path: str, *, json_body: Any = None, token: str | None = None
    ) -> Reply:
        headers = {"Accept": "application/json"}
        payload = None
        if json_body is not None:
            payload = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"Token {token}"
        conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=RECV_SECONDS)
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        return Reply(response.status, body)

    async def call(
        self, method: str, path: str, *, json_body: Any = None, token: str | None = None
    ) -> Reply:
        return await asyncio.to_thread(self.request, method, path, json_body=json_body, token=token)

    async def token(self, username: str) -> str:
        """An API token; every user of the cast has the password "pw-<username>"."""
        reply = await self.call(
            "POST",
            "/api/v1/auth/token/",
            json_body={"username": username, "password": f"pw-{username}"},
        )
        assert reply.status == 200, reply
        return str(reply.body["token"])

    async def ticket(self, token: str) -> str:
        reply = await self.call("POST", "/api/v1/realtime/ticket/", token=token)
        assert reply.status == 201, reply
        assert reply.body["expires_in"] > 0, reply
        return str(reply.body["ticket"])

    async def post(self, token: str, account_id: int, body: str) -> dict[str, Any]:
        reply = await self.call(
            "POST",
            f"/api/v1/accounts/{account_id}/activities/",
            json_body={"body": body},
            token=token,
        )
        assert reply.status == 201, reply
        return dict(reply.body)


class Socket:
    """A `/ws/` client connection with the few operations the tests need."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def recv(self, timeout: float = RECV_SECONDS) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.connection.recv(), timeout)
        message = json.loads(raw)
        assert isinstance(message, dict), message
        return message

    async def subscribe(self, stream: str, since: str | None = None) -> dict[str, Any]:
        await self.send({"op": "subscribe", "stream": stream, "since": since})
        return await self.recv()

    async def ping(self) -> None:
        """Round trip: the server handles a connection's messages in order, so a `pong` also
        proves that it is alive and had nothing queued for us before it."""
        await self.send({"op": "ping"})
        assert await self.recv() == {"type": "pong"}

    async def close_code(self) -> int | None:
        """The code the server closes with (the next thing it must do on this connection)."""
        try:
            message = await asyncio.wait_for(self.connection.recv(), RECV_SECONDS)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None
        raise AssertionError(f"expected the server to close the connection, got {message!r}")

    async def close(self) -> None:
        await self.connection.close()


async def open_socket(
    server: LiveServer,
    query: str = "",
    origin: str | None = None,
    headers: dict[str, str] | None = None,
) -> Socket:
    """Connect to `/ws/`; no Origin header unless `origin` is given (like an API client)."""
    url = server.ws_url + (f"?{query}" if query else "")
    connection = await connect(
        url,
        origin=None if origin is None else Origin(origin),
        additional_headers=headers,
        proxy=None,
        open_timeout=RECV_SECONDS,
        close_timeout=2,
    )
    return Socket(connection)


@pytest.fixture
def live_api(daphne_server: LiveServer) -> Api:
    """HTTP calls to the daphne process (not tests/conftest.py's in-process `api`)."""
    return Api(daphne_server)


class Sockets:
    """Opens `/ws/` connections and closes every one of them when the test ends."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.opened: list[Socket] = []

    async def open(
        self,
        *,
        ticket: str | None = None,
        origin: str | None = None,
        headers: dict[str, str] | None = None,
        server: LiveServer | None = None,
    ) -> Socket:
        """A connection to the session's daphne, or to `server`."""
        query = "" if ticket is None else urlencode({"ticket": ticket})
        socket_ = await open_socket(server or self.server, query, origin=origin, headers=headers)
        self.opened.append(socket_)
        return socket_

    async def close_all(self) -> None:
        for socket_ in self.opened:
            await socket_.close()


@pytest.fixture
async def sockets(daphne_server: LiveServer) -> AsyncIterator[Sockets]:
    opened = Sockets(daphne_server)
    try:
        yield opened
    finally:
        await opened.close_all()


def assert_activity_event(
    event: dict[str, Any], stream: str, activity: dict[str, Any] | None = None
) -> int:
    """Check an `activity.created` frame (against the REST answer, if given); return its cursor."""
    assert event.get("type") == "activity.created", event
    assert event["stream"] == stream, event
    data = event["data"]
    assert isinstance(data, dict), event
    if activity is not None:
        assert data["id"] == activity["id"], (event, activity)
        assert data["body"] == activity["body"], event
        assert data["account"] == activity["account"], event
    cursor = event["cursor"]
    assert isinstance(cursor, str) and cursor.isdigit(), event
    return int(cursor)
