"""Service tests: the real stack (daphne, PostgreSQL, Redis) in separate processes.

`daphne_server` starts one daphne for the whole session, on the pytest-django test database (so
tests must commit their rows: `transactional_db`) and on the configured Redis as channel layer.
Without PostgreSQL or Redis the tests skip loudly; with `CI` set they fail (tests/services.py).

The test process talks to the server over the network only: HTTP through `http.client` (run in a
thread from async tests) and WebSockets through the `websockets` client. It never touches the ORM
from inside an async test; rows are made by synchronous fixtures (`cast`) before.

When a test here fails, the tail of daphne's output (stdout and stderr) is attached to its report.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from tests import services

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
SERVER_START_SECONDS = 30.0
# 50 characters; only ever used by the throwaway server of a test run.
TEST_SECRET_KEY = "service-tests-only-not-a-secret-0123456789abcdefgh"
# Upper bound for one expected frame or HTTP answer. Generous: it is never waited out when the
# system works, it only turns a hang into a clear failure.
RECV_SECONDS = 10.0

_SERVER_KEY = pytest.StashKey["LiveServer"]()


@dataclass
class LiveServer:
    host: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws/"

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no server output)"
        return "\n".join(text.splitlines()[-lines:]) or "(no server output)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _server_env(var_dir: Path, database_url: str, redis_url: str) -> dict[str, str]:
    dropped = {
        "DATABASE_URL",
        "REDIS_URL",
        "DJANGO_DEBUG",
        "TIDINGS_VAR_DIR",
        # The origin tests rely on the default: only the page's own origin is allowed.
        "TIDINGS_ALLOWED_ORIGINS",
        "CSRF_TRUSTED_ORIGINS",
    }
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DJANGO_SECRET_KEY=TEST_SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_DEBUG="false",
        TIDINGS_VAR_DIR=str(var_dir),
        PYTHONUNBUFFERED="1",
    )
    return env


def _healthz_status(port: int) -> str | None:
    """None when /healthz/ answers 200, else what went wrong."""
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", "/healthz/")
        response = conn.getresponse()
        body = response.read()
    except OSError as error:
        return f"{type(error).__name__}: {error}"
    finally:
        conn.close()
    if response.status == 200:
        return None
    return f"HTTP {response.status}: {body[:200]!r}"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class _ExitedEarly(RuntimeError):
    """daphne died during start-up (for instance: the port was taken after all)."""


def _start_daphne(env: dict[str, str], log: Path) -> LiveServer:
    daphne = Path(sys.executable).with_name("daphne")
    port = _free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(daphne), "-b", HOST, "-p", str(port), "config.asgi:application"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(host=HOST, port=port, process=process, log=log)
    deadline = time.monotonic() + SERVER_START_SECONDS
    problem = "no answer yet"
    try:
        while True:
            problem = _healthz_status(port) or ""
            if not problem:
                return server
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"daphne on port {port} was not healthy after {SERVER_START_SECONDS:.0f}s "
                    f"(last: {problem}); its output:\n{server.log_tail()}"
                )
            # The pause between two polls doubles as the check that daphne is still alive.
            try:
                code = process.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                continue
            raise _ExitedEarly(
                f"daphne exited with code {code} before it was healthy; its output:\n"
                + server.log_tail()
            )
    except BaseException:
        _stop(process)
        raise


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
    database_url = services.database_url_for_subprocess()
    workdir = tmp_path_factory.mktemp("daphne")
    var_dir = workdir / "var"
    var_dir.mkdir()
    env = _server_env(var_dir, database_url, redis_url)
    try:
        # A port picked as free may be taken before daphne binds it; try a fresh one then.
        for attempt in range(3):
            try:
                server = _start_daphne(env, workdir / f"daphne-{attempt}.log")
                break
            except _ExitedEarly:
                if attempt == 2:
                    raise
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    request.config.stash[_SERVER_KEY] = server
    try:
        yield server
    finally:
        del request.config.stash[_SERVER_KEY]
        _stop(server.process)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    server = item.config.stash.get(_SERVER_KEY, None)
    if report.failed and server is not None:
        report.sections.append(("daphne output (stdout+stderr, tail)", server.log_tail()))
    return report


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

    async def recv(self) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.connection.recv(), RECV_SECONDS)
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


async def open_socket(server: LiveServer, query: str = "", origin: str | None = None) -> Socket:
    """Connect to `/ws/`; no Origin header unless `origin` is given (like an API client)."""
    url = server.ws_url + (f"?{query}" if query else "")
    connection = await connect(
        url,
        origin=None if origin is None else Origin(origin),
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

    async def open(self, *, ticket: str | None = None, origin: str | None = None) -> Socket:
        query = "" if ticket is None else urlencode({"ticket": ticket})
        socket_ = await open_socket(self.server, query, origin=origin)
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
