"""The pool's checkout check (config/postgresql/base.py): no round trip for a connection the
server has said nothing on, and a terminated one is found and replaced before anyone uses it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection

from config.postgresql.base import check_pooled_connection
from tests.services import require_postgres

pytestmark = pytest.mark.django_db(transaction=True)

GONE_WITHIN = 10.0  # seconds a terminated backend may take to leave pg_stat_activity


def _connect() -> psycopg.Connection[Any]:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


@pytest.fixture
def admin() -> Iterator[psycopg.Connection[Any]]:
    require_postgres()
    with _connect() as conn:
        yield conn


def _last_query(admin: psycopg.Connection[Any], pid: int) -> str:
    row = admin.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    assert row is not None
    return str(row[0])


def _terminate(admin: psycopg.Connection[Any], pids: list[int]) -> None:
    """Terminate the backends and wait until PostgreSQL reports each of them gone."""
    for pid in pids:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + GONE_WITHIN
    while True:
        left = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [pids]
        ).fetchone()
        if left is not None and left[0] == 0:
            return
        assert time.monotonic() < deadline, f"backends {pids} still running"
        admin.execute("SELECT pg_sleep(0.01)")  # PostgreSQL's own clock; the exit is its event


def test_a_healthy_idle_connection_is_passed_without_a_query(admin: Any) -> None:
    with _connect() as conn:
        conn.execute("SELECT 42")
        check_pooled_connection(conn)
        # The backend's last statement is still ours: the check sent nothing.
        assert _last_query(admin, conn.info.backend_pid) == "SELECT 42"


def test_a_terminated_connection_fails_the_check(admin: Any) -> None:
    with _connect() as conn:
        conn.execute("SELECT 1")
        _terminate(admin, [conn.info.backend_pid])
        with pytest.raises(psycopg.OperationalError):
            check_pooled_connection(conn)


def test_a_closed_connection_fails_the_check(admin: Any) -> None:
    conn = _connect()
    conn.close()
    with pytest.raises(psycopg.OperationalError):
        check_pooled_connection(conn)


def test_the_pool_replaces_connections_the_server_terminated(admin: Any) -> None:
    """Every backend the pool holds is terminated while idle: the next query still answers,
    on a new backend, with no error reaching the caller."""
    assert connection.pool is not None, "the pool is the deployed configuration"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        before = cursor.fetchone()[0]
    connection.close()  # back to the pool
    mine = admin.info.backend_pid
    rows = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> %s"
        " AND backend_type = 'client backend'",
        [mine],
    ).fetchall()
    pids = [row[0] for row in rows]
    assert before in pids
    _terminate(admin, pids)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        after = cursor.fetchone()[0]
    assert after not in pids
