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

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, connections

from tests import servers, services
from tests.servers import WebServer

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

# The name these tests have always used for a server (`.url` is its http://host:port).
LiveServer = WebServer

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


def _server_env(var_dir: Path) -> dict[str, str]:
    if connection.vendor == "postgresql":
        redis_url = services.require_redis() if settings.REDIS_URL else None
        return servers.server_env(
            var_dir, database_url=services.database_url_for_subprocess(), redis_url=redis_url
        )
    name = connection.settings_dict["NAME"]
    if _in_memory(name):
        services.unavailable(
            "Shared SQLite test database",
            f"the test database is in memory ({name!r}), so a server process cannot see it",
        )
    path = Path(name).resolve()
    database_url = f"sqlite:///{path}?timeout=20&transaction_mode=IMMEDIATE"
    return servers.server_env(var_dir, database_url=database_url)


@pytest.fixture
def live_server_daphne(transactional_db: None, tmp_path: Path) -> Iterator[LiveServer]:
    """daphne serving config.asgi on a free port, on this test's (committed) database."""
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    env = _server_env(var_dir)
    with servers.running_web(env, tmp_path) as server:
        # The server runs on the same stack as this test run, not on a default of its own.
        expected_redis = "ok" if env.get("REDIS_URL") else "not configured"
        health = server.health
        assert health == {"status": "ok", "database": "ok", "redis": expected_redis}, health
        yield server


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
