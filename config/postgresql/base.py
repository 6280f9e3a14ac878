"""Django's PostgreSQL backend, its connection pool checked without a round trip per checkout.

With `CONN_HEALTH_CHECKS`, Django hands psycopg_pool `ConnectionPool.check_connection`, which
sends an empty query every time a connection leaves the pool: once per HTTP request and once per
trip of a WebSocket consumer to the worker pool. Profiled on the real-time benchmark's 1,000
connects, those checks were a third of the database time a connect took (docs/benchmarks.md).

`check_pooled_connection` asks the operating system instead. A connection idle in the pool has
nothing to read unless the server said something: a backend that was terminated (a restart, a
failover, `pg_terminate_backend`, an idle timeout) writes its FATAL error and closes the socket,
which leaves it readable. Only then is the empty query sent, which fails on a dead connection, so
the pool throws it away and hands out another, as before. A connection lost with no word from
the server (a cable pulled between hosts) passes either check until TCP gives up on it.
"""

from __future__ import annotations

import select
from typing import Any

from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base

# django-stubs leaves out the pool's internals that this class reads (Django 5.2's own names).
_PostgreSQLWrapper: Any = base.DatabaseWrapper

ConnectionPool: Any
try:
    from psycopg_pool import ConnectionPool
except ImportError:  # pragma: no cover - the pool is optional, as in Django
    ConnectionPool = None


def check_pooled_connection(conn: Any) -> None:
    """Raise if `conn`, idle in the pool, is no longer usable; a round trip only when the server
    has written to it since it was last used."""
    if conn.closed:
        raise conn.OperationalError("the connection is closed")
    poller = select.poll()  # not select(): a busy web process has descriptors above 1024
    poller.register(conn.fileno(), select.POLLIN)
    if poller.poll(0):
        ConnectionPool.check_connection(conn)


class DatabaseWrapper(_PostgreSQLWrapper):
    @property
    def pool(self) -> Any:
        pool_options = self.settings_dict["OPTIONS"].get("pool")
        if (
            pool_options
            and self.settings_dict["CONN_HEALTH_CHECKS"]
            and self.settings_dict.get("CONN_MAX_AGE", 0) == 0  # else Django refuses the pool
            and self.alias != NO_DB_ALIAS
            and self.alias not in self._connection_pools
            and ConnectionPool is not None
        ):
            # Django's own construction (django.db.backends.postgresql.base), with our check.
            connect_kwargs = self.get_connection_params()
            connect_kwargs["autocommit"] = True
            pool = ConnectionPool(
                kwargs=connect_kwargs,
                open=False,
                configure=self._configure_connection,
                check=check_pooled_connection,
                **({} if pool_options is True else pool_options),
            )
            self._connection_pools.setdefault(self.alias, pool)
        return super().pool
