"""Whether a database error means "the database is out of reach", as opposed to a bug.

Django raises `OperationalError` for both: a refused connection or a pool that timed out, and a
missing table, a statement timeout or a deadlock. Only the first kind is answered "try again
later" (HTTP 503, WebSocket 4503); the rest stay errors, with their tracebacks.
"""

from __future__ import annotations

import sqlite3

import psycopg
from django.db import InterfaceError, OperationalError

# SQLSTATEs of a server that cannot serve: shutting down or starting (57P01-57P03), out of
# connection slots (53300). Class 08 is every connection exception.
_AWAY_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def is_database_unavailable(error: BaseException) -> bool:
    if isinstance(error, InterfaceError):
        return True  # the connection is closed or broken
    if not isinstance(error, OperationalError):
        return False
    cause = error.__cause__
    if isinstance(cause, sqlite3.OperationalError):
        return "database is locked" in str(cause)
    if not isinstance(cause, psycopg.Error):
        return False
    state = cause.sqlstate
    # No SQLSTATE: the failure is the connection's own (refused, closed, the pool's timeout).
    return state is None or state.startswith("08") or state in _AWAY_STATES
