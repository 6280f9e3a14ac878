"""Database reads of the WebSocket side, run off the event loop, giving their connection back.

With the connection pool (config/settings.py) a connection left open in a worker thread is a
connection the pool never sees again. channels' `database_sync_to_async` closes old connections
around each call, but measured here it left the connection of a call open (the pool's checked-out
count grew by one per test until it was exhausted and requests waited 30 s); so the call itself
closes what it opened, in the thread and context that opened it. A connection inside a
transaction (a test's) is left alone.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django.db import InterfaceError, OperationalError, connections

# What a read raises when PostgreSQL is out of reach (down, restarting, the pool empty past its
# timeout), among other database errors: `config.dbfaults.is_database_unavailable` tells which. A
# socket is then closed with CLOSE_TRY_AGAIN rather than crashed (1011).
DATABASE_AWAY = (OperationalError, InterfaceError)

P = ParamSpec("P")
T = TypeVar("T")


def _closing(func: Callable[P, T]) -> Callable[P, T]:
    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return func(*args, **kwargs)
        finally:
            for connection in connections.all(initialized_only=True):
                if not connection.in_atomic_block:
                    connection.close()

    return run


def in_worker(func: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """Run `func` in the worker pool, not on Django's single thread-sensitive thread: a thousand
    sockets checking access must not queue behind one another."""
    return database_sync_to_async(_closing(func), thread_sensitive=False)  # type: ignore[no-any-return]


def in_sync_thread(func: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """Run `func` on Django's thread-sensitive thread (the hub's reads, which are sequential)."""
    return database_sync_to_async(_closing(func))  # type: ignore[no-any-return]
