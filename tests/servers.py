"""Servers that tests start in subprocesses: Tidings web processes (daphne), and a private Redis.

A web process is started with the production command line, `config.processes.web(host, port)`,
so the tests exercise the same daphne options (frame, message and keepalive limits) that a
deployment runs; only `argv[0]` is resolved to the daphne of this virtualenv. A server is ready
when `/healthz/` answers 200 within `START_SECONDS`; its stdout and stderr go to a log file whose
tail the fixtures attach to failing tests.

Used by tests/service/conftest.py and tests/browser/conftest.py.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config import processes
from tests import services

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
START_SECONDS = 30.0
STOP_SECONDS = 10.0
# 50 characters; only ever used by the throwaway servers of a test run.
TEST_SECRET_KEY = "subprocess-tests-only-not-a-secret-0123456789abcde"
# Variables of the test run's own environment that must not leak into a server: each server gets
# the database, Redis, var folder and debug setting it is given, and the default origin policy
# (only the page's own origin), which the origin tests rely on.
_NOT_INHERITED = frozenset(
    {
        "DATABASE_URL",
        "REDIS_URL",
        "DJANGO_DEBUG",
        "DJANGO_SECRET_KEY",
        "ALLOWED_HOSTS",
        "TIDINGS_VAR_DIR",
        "TIDINGS_ALLOWED_ORIGINS",
        "CSRF_TRUSTED_ORIGINS",
    }
)


def free_port(host: str = HOST) -> int:
    """A port nothing listens on right now (it may be taken before it is used: retry then)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def web_argv(host: str, port: int, tier: str = "web") -> list[str]:
    """The production command line of a web process (`tier` "web": daphne; "inbound": the
    inbound email tier's uvicorn), run with this virtualenv's executable."""
    argv = {"web": processes.web, "inbound": processes.inbound}[tier](host, port)
    executable = Path(sys.executable).with_name(argv[0])
    if not executable.exists():
        raise RuntimeError(f"{argv[0]} is not installed next to {sys.executable}")
    return [str(executable), *argv[1:]]


def server_env(
    var_dir: Path,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment of a web process on this test run's database.

    `database_url` defaults to the PostgreSQL test database (`database_url_for_subprocess`);
    without `redis_url` the server uses the in-process channel layer. `var_dir` is the server's
    private TIDINGS_VAR_DIR. `extra` adds or overrides variables.
    """
    env = {key: value for key, value in os.environ.items() if key not in _NOT_INHERITED}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=database_url or services.database_url_for_subprocess(),
        DJANGO_SECRET_KEY=TEST_SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_DEBUG="false",
        TIDINGS_VAR_DIR=str(var_dir),
        PYTHONUNBUFFERED="1",
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra)
    return env


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no output)"
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"


def stop_process(process: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    """Terminate (or kill) `process` and reap it; a process that ignores SIGTERM is killed."""
    if process.poll() is not None:
        return
    if kill:
        process.kill()
    else:
        process.terminate()
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_SECONDS)


@dataclass
class Health:
    status: int
    body: Any


def healthz(host: str, port: int, timeout: float = 2.0) -> Health:
    """`GET /healthz/`; raises OSError when nothing answers."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/healthz/")
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        body = json.loads(raw)
    except ValueError:
        body = raw[:200]
    return Health(response.status, body)


@dataclass
class WebServer:
    """A daphne process serving config.asgi."""

    host: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    # The /healthz/ answer that declared the server ready.
    health: dict[str, Any] = field(default_factory=dict)

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # The name the browser tests use.
    url = http_url

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws/"

    def healthz(self) -> Health:
        return healthz(self.host, self.port)

    def log_tail(self, lines: int = 60) -> str:
        return _tail(self.log, lines)

    def stop(self) -> None:
        stop_process(self.process)


class ServerDidNotStart(RuntimeError):
    pass


class _ExitedEarly(ServerDidNotStart):
    """daphne died during start-up (for instance: the port was taken after all)."""


def _start_once(
    env: dict[str, str], log: Path, host: str, start_seconds: float, tier: str
) -> WebServer:
    port = free_port(host)
    with log.open("wb") as out:
        process = subprocess.Popen(
            web_argv(host, port, tier),
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = WebServer(host=host, port=port, process=process, log=log)
    deadline = time.monotonic() + start_seconds
    problem = "no answer yet"
    try:
        while True:
            try:
                health = server.healthz()
            except OSError as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                if health.status == 200 and isinstance(health.body, dict):
                    server.health = health.body
                    return server
                problem = f"HTTP {health.status}: {health.body!r}"
            if time.monotonic() > deadline:
                raise ServerDidNotStart(
                    f"daphne on port {port} was not healthy after {start_seconds:.0f}s "
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
        stop_process(process)
        raise


def start_web(
    env: dict[str, str],
    log_dir: Path,
    *,
    name: str = "daphne",
    host: str = HOST,
    attempts: int = 3,
    start_seconds: float = START_SECONDS,
    tier: str = "web",
) -> WebServer:
    """Start a web process on a free port and wait until `/healthz/` answers 200.

    Its output goes to `log_dir/<name>-<attempt>.log`. A port picked as free may be taken before
    daphne binds it; then a fresh one is tried. Raises ServerDidNotStart.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(attempts):
        try:
            return _start_once(env, log_dir / f"{name}-{attempt}.log", host, start_seconds, tier)
        except _ExitedEarly:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


@contextmanager
def running_web(env: dict[str, str], log_dir: Path, **options: Any) -> Iterator[WebServer]:
    """`start_web`, stopped (terminated, killed if need be) when the block ends."""
    server = start_web(env, log_dir, **options)
    try:
        yield server
    finally:
        server.stop()


# --- Celery worker and beat -------------------------------------------------------------------


@dataclass
class CeleryProcess:
    """`celery worker` or `celery beat` with the production command line, in its own process
    group so that killing it takes its pool children too (as losing the machine would)."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL to the whole group: no warm shutdown, no acknowledgement of the running task."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_SECONDS)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 60) -> str:
        return _tail(self.log, lines)


def purge_broker(env: dict[str, str]) -> None:
    """Empty the queues of the broker `env` names. The broker of the service tests is the shared
    test Redis: servers of earlier tests queue tasks there that no worker reads (the slow-client
    test's hundreds of posts left ~2,300), and a test's worker working through them first missed
    its test's deadline. Called when a test's Celery fixture is set up, before the test queues
    anything of its own."""
    executable = Path(sys.executable).with_name("celery")
    subprocess.run(
        [str(executable), "-A", "config", "purge", "-f"],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
        timeout=60,
    )


def start_celery(name: str, env: dict[str, str], log_dir: Path) -> CeleryProcess:
    """Start `config.processes.command(name)` ("worker" or "beat"); readiness is for the caller
    to await through what the process does."""
    argv = processes.command(name)
    executable = Path(sys.executable).with_name(argv[0])
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"celery-{name}-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(executable), *argv[1:]],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return CeleryProcess(name=name, process=process, log=log)


# --- a private Redis --------------------------------------------------------------------------

REDIS_SERVER = "/usr/bin/redis-server"


def _redis_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    """A throwaway `redis-server` without persistence, which a test may kill and start again."""

    port: int
    log: Path
    host: str = HOST
    process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    def start(self) -> None:
        """Start (again, on the same port) and wait until it answers PING."""
        executable = shutil.which(REDIS_SERVER)
        if executable is None:
            services.unavailable("redis-server", f"{REDIS_SERVER} is not installed")
        assert executable is not None
        argv = [executable, "--port", str(self.port), "--bind", self.host]
        argv += ["--save", "", "--appendonly", "no", "--protected-mode", "no"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_SECONDS
        while not _redis_answers(self.host, self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = _tail(self.log, 30)
                self.stop()
                raise ServerDidNotStart(
                    f"redis-server on port {self.port} did not start:\n{output}"
                )
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye to the clients; everything in memory is lost."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=STOP_SECONDS)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self.log, lines)


@contextmanager
def running_redis(log_dir: Path) -> Iterator[RedisServer]:
    log_dir.mkdir(parents=True, exist_ok=True)
    server = RedisServer(port=free_port(), log=log_dir / "redis-server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
