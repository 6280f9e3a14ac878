"""Access to the real services a test is about, skipping loudly when one is missing.

On a developer laptop a missing PostgreSQL, Redis or Chromium skips the test with a reason that
`pytest -ra` prints in the summary. With `CI` set, the same absence fails the test.
"""

from __future__ import annotations

import os
import shutil
import socket
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.db import connection


def unavailable(service: str, reason: str) -> None:
    message = f"{service} unavailable: {reason}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so this is a failure, not a skip)")
    pytest.skip(f"*** SKIPPED: {message} ***")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_postgres() -> None:
    if connection.vendor != "postgresql":
        unavailable("PostgreSQL", "set DATABASE_URL=postgres://... to run this test")


def require_redis() -> str:
    url = settings.REDIS_URL
    if not url:
        unavailable("Redis", "set REDIS_URL=redis://... to run this test")
    parsed = urlparse(url)
    if not _reachable(parsed.hostname or "127.0.0.1", parsed.port or 6379):
        unavailable("Redis", f"nothing answers at {parsed.hostname}:{parsed.port or 6379}")
    return url


def require_chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        unavailable("Chromium", "install Debian's `chromium` package (apt-get install chromium)")
    assert path is not None
    return path


def database_url_for_subprocess() -> str:
    """A DATABASE_URL that points a child process at the database this test run uses."""
    require_postgres()
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"
