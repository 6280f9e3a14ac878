"""Browser tests: a real daphne in a subprocess, driven by Debian's headless Chromium.

The server runs in its own process, so it must see the rows the test writes:

- PostgreSQL (DATABASE_URL set): the test database, through `transactional_db` (rows are
  committed, not hidden in a rolled-back transaction), and the Redis channel layer when REDIS_URL
  is set.
- SQLite (the embedded default): pytest-django would put the test database in memory, where no
  other process can reach it. When browser tests are selected, `pytest_collection_modifyitems`
  below gives the SQLite test database a file in a private temporary folder instead. This is done
  at collection time, before any test creates the database, because the session-wide database is
  created once by whichever test asks first (pytest-django runs `db` tests before `transactional_db`
  ones), so a `django_db_modify_db_settings` override in this folder could come too late. The
  daphne process then uses the in-process channel layer, which is enough: both browsers talk to it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, connections

from tests import services

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_SECONDS = 30.0
# 50 characters; only ever used by the throwaway server of a test run.
TEST_SECRET_KEY = "browser-tests-only-not-a-secret-0123456789abcdefgh"

_sqlite_dir: Path | None = None


def _is_sqlite(db: dict[str, Any]) -> bool:
    return db["ENGINE"] == "django.db.backends.sqlite3"


def _in_memory(name: object) -> bool:
    text = str(name)
    return text in ("", ":memory:") or "mode=memory" in text


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give the SQLite test database a file when a browser test is going to run."""
    global _sqlite_dir
    if not any(item.get_closest_marker("browser") for item in items):
        return
    db = connections.settings["default"]
    if not _is_sqlite(db):
        return
    test = db.setdefault("TEST", {})
    if test.get("NAME") and not _in_memory(test["NAME"]):
        return  # already a file, shared as it is
    _sqlite_dir = Path(tempfile.mkdtemp(prefix="tidings-browser-db-"))
    test["NAME"] = str(_sqlite_dir / "test.sqlite3")
    # connections.settings is settings.DATABASES; keep both views in step even if it were a copy.
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = test["NAME"]


def pytest_unconfigure(config: pytest.Config) -> None:
    if _sqlite_dir is not None:
        shutil.rmtree(_sqlite_dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_env(var_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_DEBUG", "TIDINGS_VAR_DIR")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_SECRET_KEY=TEST_SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_DEBUG="false",
        TIDINGS_VAR_DIR=str(var_dir),
        PYTHONUNBUFFERED="1",
    )
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] = services.database_url_for_subprocess()
        if settings.REDIS_URL:
            env["REDIS_URL"] = services.require_redis()
    else:
        name = connection.settings_dict["NAME"]
        if _in_memory(name):
            services.unavailable(
                "Shared SQLite test database",
                f"the test database is in memory ({name!r}), so a server process cannot see it",
            )
        path = Path(name).resolve()
        env["DATABASE_URL"] = f"sqlite:///{path}?timeout=20&transaction_mode=IMMEDIATE"
    return env


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


def _wait_until_healthy(server: LiveServer) -> dict[str, Any]:
    deadline = time.monotonic() + SERVER_START_SECONDS
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"daphne exited with {server.process.returncode} before it was ready:\n"
                + server.log_tail()
            )
        try:
            with urllib.request.urlopen(f"{server.url}/healthz/", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return dict(json.load(response))
                last_error = f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            last_error = f"HTTP {error.code}"
        except OSError as error:
            last_error = str(error)
        time.sleep(0.1)
    raise RuntimeError(
        f"daphne was not healthy after {SERVER_START_SECONDS:.0f}s ({last_error}):\n"
        + server.log_tail()
    )


@pytest.fixture
def live_server_daphne(transactional_db: None, tmp_path: Path) -> Iterator[LiveServer]:
    """daphne serving config.asgi on a free port, on this test's (committed) database."""
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    env = _server_env(var_dir)
    port = _free_port()
    daphne = Path(sys.executable).with_name("daphne")
    log = tmp_path / "daphne.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(daphne), "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(url=f"http://127.0.0.1:{port}", process=process, log=log)
    try:
        health = _wait_until_healthy(server)
        # The server runs on the same stack as this test run, not on a default of its own.
        expected_redis = "ok" if env.get("REDIS_URL") else "not configured"
        assert health == {"status": "ok", "database": "ok", "redis": expected_redis}, health
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium through Playwright's sync API (never a downloaded browser)."""
    executable = services.require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
