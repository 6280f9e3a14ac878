"""The systems under test, each a subprocess on 127.0.0.1, and their cleanup.

Every process started here is registered and stopped by `stop_all()`, which `bench.run` calls in a
`finally` and at exit; on Linux each child also gets SIGTERM from the kernel if this process dies
without cleaning up (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import atexit
import ctypes
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
BIN = Path(sys.executable).parent
START_SECONDS = 45.0

_running: list[subprocess.Popen[bytes]] = []


class BenchError(RuntimeError):
    """The benchmark cannot go on (a server died, clients could not connect, ...)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _resolve(argv: list[str]) -> list[str]:
    local = BIN / argv[0]
    return [str(local) if local.exists() else argv[0], *argv[1:]]


def daphne_argv(port: int, application: str) -> list[str]:
    """Production's daphne command line (config.processes.web), serving `application`."""
    from config.processes import web  # not at import: `config` loads settings (bench.env)

    argv = _resolve(web(HOST, port))
    assert argv[-1] == "config.asgi:application", argv
    return [*argv[:-1], application]


def uvicorn_argv(port: int, application: str) -> list[str]:
    """uvicorn with the limits daphne gets in production, and its own defaults otherwise."""
    return _resolve(
        [
            "uvicorn",
            application,
            "--host",
            HOST,
            "--port",
            str(port),
            "--ws-max-size",
            "65536",
            "--ws-ping-interval",
            "20",
            "--ws-ping-timeout",
            "30",
            # Django's ASGI handler does not speak the lifespan protocol.
            "--lifespan",
            "off",
        ]
    )


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def http_base(self) -> tuple[str, int]:
        return HOST, self.port

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/ws/"

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.argv,
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        _running.append(self.process)
        deadline = time.monotonic() + START_SECONDS
        problem = "no answer yet"
        while time.monotonic() < deadline:
            problem = _healthz(self.port) or ""
            if not problem:
                return
            try:
                code = self.process.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
            raise BenchError(f"{self.name} exited with {code} while starting:\n{self.log_tail()}")
        raise BenchError(f"{self.name} not healthy after {START_SECONDS:.0f}s ({problem})")

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise BenchError(f"{self.name} is not running:\n{self.log_tail()}")

    def rss_kib(self) -> int:
        """Resident memory of the server process (VmRSS), in KiB."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise BenchError("no VmRSS in /proc/<pid>/status")

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:]) or "(no output)"

    def log_errors(self, lines: int = 40) -> str:
        """The last error the server logged (a traceback or an ERROR line), else the tail."""
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no output)"
        for index in range(len(text) - 1, -1, -1):
            if "Traceback" in text[index] or " ERROR " in text[index]:
                return "\n".join(text[index : index + lines])
        return self.log_tail(lines)

    def last_exception(self) -> str:
        """The last "SomeError: message" line of the server's output, or ""."""
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        for line in reversed(text):
            name, colon, _ = line.partition(": ")
            if colon and name.endswith(("Error", "Exception")) and " " not in name:
                return line.strip()
        return ""

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)


def _healthz(port: int) -> str | None:
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", "/healthz/")
        response = conn.getresponse()
        body = response.read()
    except OSError as error:
        return f"{type(error).__name__}: {error}"
    finally:
        conn.close()
    return None if response.status == 200 else f"HTTP {response.status}: {body[:200]!r}"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    if process in _running:
        _running.remove(process)


def stop_all() -> None:
    for process in list(_running):
        _stop(process)


def _on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def install_cleanup() -> None:
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGHUP, _on_sigterm)


def server_env(
    *, settings_module: str, database_url: str, redis_url: str, var_dir: Path, secret_key: str
) -> dict[str, str]:
    dropped = {
        "DATABASE_URL",
        "REDIS_URL",
        "DJANGO_DEBUG",
        "TIDINGS_VAR_DIR",
        "TIDINGS_ALLOWED_ORIGINS",
        "CSRF_TRUSTED_ORIGINS",
        "DJANGO_SETTINGS_MODULE",
    }
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env.update(
        DJANGO_SETTINGS_MODULE=settings_module,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DJANGO_SECRET_KEY=secret_key,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_DEBUG="false",
        TIDINGS_VAR_DIR=str(var_dir),
        PYTHONUNBUFFERED="1",
    )
    return env
