"""Which database errors mean "out of reach" (503 / 4503) and which stay errors (500)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from django.db import OperationalError, ProgrammingError, connection, connections, transaction

from config.dbfaults import is_database_unavailable
from tests import servers
from tests.services import require_postgres

pytestmark = pytest.mark.django_db(transaction=True)


def _raised(run: Any) -> BaseException:
    with pytest.raises(Exception) as caught:
        run()
    return caught.value


def test_a_refused_connection_is_unavailability() -> None:
    require_postgres()
    unreachable = connections.create_connection("default")
    unreachable.settings_dict = {
        **unreachable.settings_dict,
        "PORT": servers.free_port(),
        "OPTIONS": {k: v for k, v in unreachable.settings_dict["OPTIONS"].items() if k != "pool"},
    }
    try:
        error = _raised(unreachable.ensure_connection)
    finally:
        unreachable.close()
    assert isinstance(error, OperationalError)
    assert is_database_unavailable(error)


def test_a_statement_timeout_and_a_missing_table_are_not() -> None:
    require_postgres()

    def too_slow() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 10")
            cursor.execute("SELECT pg_sleep(1)")

    def missing() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table_here")

    timeout = _raised(too_slow)
    assert isinstance(timeout, OperationalError)  # QueryCanceled: an OperationalError too
    assert not is_database_unavailable(timeout)
    absent = _raised(missing)
    assert isinstance(absent, ProgrammingError)
    assert not is_database_unavailable(absent)


def test_on_sqlite_only_a_locked_database_is() -> None:
    db = sqlite3.connect(":memory:")
    try:
        db.execute("SELECT * FROM no_such_table_here")
    except sqlite3.OperationalError as raw:
        try:
            raise OperationalError(*raw.args) from raw
        except OperationalError as wrapped:
            assert not is_database_unavailable(wrapped)
    locked = sqlite3.OperationalError("database is locked")
    try:
        raise OperationalError(*locked.args) from locked
    except OperationalError as wrapped:
        assert is_database_unavailable(wrapped)
    assert not is_database_unavailable(ValueError("not a database error"))
