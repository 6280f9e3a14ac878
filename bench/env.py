"""Names of the benchmark's own databases, and this process's environment.

Nothing here imports the project: `config/__init__.py` loads the Django settings as soon as any
`config` module is imported, so `prepare()` must set DATABASE_URL and friends first; otherwise this
process would seed the developer's own database.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
DB_NAME = "tidings_bench"
DATABASE_URL = f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{DB_NAME}"
REDIS_URL = "redis://127.0.0.1:6379/9"
# 50 characters; only ever used by the throwaway servers of a benchmark run.
SECRET_KEY = "benchmark-only-not-a-secret-0123456789abcdefghijkl"  # noqa: S105
NAIVE_TABLE = "bench_naive_post"


def prepare() -> Path:
    """A fresh work directory; this process's Django environment points at the bench databases."""
    workdir = Path(tempfile.mkdtemp(prefix="tidings-bench-"))
    var_dir = workdir / "var"
    var_dir.mkdir()
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        DJANGO_SECRET_KEY=SECRET_KEY,
        TIDINGS_VAR_DIR=str(var_dir),
        DJANGO_DEBUG="false",
    )
    os.environ.setdefault("TIDINGS_LOG_LEVEL", "WARNING")
    return workdir
