"""Model instances from hand-written SQL, built the way the ORM builds them.

`ModelColumns` is the select list of one model under a table alias, and the conversion of that
run of a result row into an instance with the database converters the ORM would apply (JSON,
SQLite datetimes, ...). Hand-written reads use it where Django's query compiler would cost more
than the query: the feed's pages (feed/sqlrows.py, docs/benchmarks-feed.md) and the visibility
policy's one-account question (crm/visibility.py, docs/benchmarks.md). It lives in `crm` because
imports go one way (`feed -> crm`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

M = TypeVar("M", bound=Model)
Converter = Callable[[Any, Any, BaseDatabaseWrapper], Any]


class ModelColumns(Generic[M]):
    """All concrete columns of `model` under `alias`, and how to load them from a row.

    Build them with `columns_of`, which keeps them: finding the converters costs more than loading
    a page of rows."""

    def __init__(
        self,
        model: type[M],
        alias: str,
        connection: BaseDatabaseWrapper,
        only: tuple[str, ...] | None = None,
    ) -> None:
        fields = [
            field
            for field in model._meta.concrete_fields
            if only is None or field.attname in only or field.primary_key
        ]
        self.model = model
        self.connection = connection
        self.db = connection.alias
        self.width = len(fields)
        self.attnames = [field.attname for field in fields]
        self.select = ", ".join(f'{alias}."{field.column}"' for field in fields)
        self.converters: list[tuple[int, list[Converter], Any]] = []
        for index, field in enumerate(fields):
            column = field.get_col(alias)
            found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if found:
                self.converters.append((index, found, column))

    def load(self, row: Sequence[Any], start: int) -> M | None:
        """The instance in `row[start:start + width]`; None when its primary key is NULL (a LEFT
        JOIN that found nothing)."""
        values = list(row[start : start + self.width])
        if values[0] is None:
            return None
        for index, converters, column in self.converters:
            value = values[index]
            for convert in converters:
                value = convert(value, column, self.connection)
            values[index] = value
        return self.model.from_db(self.db, self.attnames, values)


class JoinedColumns(Generic[M]):
    """`base` with the rows of some of its foreign keys joined in, as `select_related` loads them:
    one select list, and the instance with each related row cached on its field (None for a
    LEFT JOIN that found nothing). `related` is (field name, that row's columns), in the order
    the select list gives them."""

    def __init__(
        self, base: ModelColumns[M], related: Sequence[tuple[str, ModelColumns[Any]]]
    ) -> None:
        self.base = base
        self.runs = [(base.model._meta.get_field(name), columns) for name, columns in related]
        self.select = ", ".join([base.select, *(columns.select for _, columns in self.runs)])

    def load(self, row: Sequence[Any]) -> M | None:
        """The instance at the start of `row`, its related rows cached; None as `ModelColumns`."""
        instance = self.base.load(row, 0)
        if instance is None:
            return None
        start = self.base.width
        for field, columns in self.runs:
            field.set_cached_value(instance, columns.load(row, start))  # type: ignore[union-attr]
            start += columns.width
        return instance


_KEPT: dict[tuple[type[Model], str, str, tuple[str, ...] | None], ModelColumns[Any]] = {}


def columns_of(
    model: type[M],
    alias: str,
    connection: BaseDatabaseWrapper,
    only: tuple[str, ...] | None = None,
) -> ModelColumns[M]:
    """`ModelColumns(model, alias, connection, only)`, made once per database alias. The
    converters are bound to the first connection object of that alias; every thread's connection
    to one alias has the same settings, which is all they read. Fields left out of `only` are
    deferred, as with `QuerySet.only`."""
    real = connections[connection.alias]
    key = (model, alias, real.alias, only)
    kept = _KEPT.get(key)
    if kept is None:
        kept = _KEPT[key] = ModelColumns(model, alias, real, only)
    return kept


# --- INSERTs written by hand ---------------------------------------------------------------------

# Rows per INSERT: within PostgreSQL's 65,535 parameters for any of our models.
ROWS_PER_INSERT = 1000


def insert_instances(instances: Sequence[Model], *, database_ids: bool) -> None:
    """INSERT new `instances` of one model as `save` or `bulk_create` would, the statement written
    by hand: on the post path building and compiling the ORM's InsertQuery cost more Python than
    the statement's round trip (the activity's 0.99 -> 0.84 ms, docs/benchmarks.md). Values go
    through each field's own `pre_save` and preparation (`auto_now_add`, the JSON adapter).
    With `database_ids` the database draws the ids, which are set on the instances (RETURNING,
    on PostgreSQL and SQLite); otherwise each instance brings its own. Model signals are not
    sent: for models that have no receivers."""
    if not instances:
        return
    model = type(instances[0])
    db = connections[DEFAULT_DB_ALIAS]
    fields = _insert_fields(model, database_ids)
    for start in range(0, len(instances), ROWS_PER_INSERT):
        chunk = instances[start : start + ROWS_PER_INSERT]
        params = [
            field.get_db_prep_save(field.pre_save(instance, True), db)
            for instance in chunk
            for field in fields
        ]
        with db.cursor() as cursor:
            cursor.execute(_insert_sql(model, database_ids, len(chunk), db.vendor), params)
            if database_ids:
                for instance, (pk,) in zip(chunk, cursor.fetchall(), strict=True):
                    instance.pk = pk
    for instance in instances:
        instance._state.adding = False
        instance._state.db = db.alias


def _insert_fields(model: type[Model], database_ids: bool) -> list[Any]:
    fields = model._meta.concrete_fields
    return [field for field in fields if not (database_ids and field.primary_key)]


@lru_cache(maxsize=64)
def _insert_sql(model: type[Model], database_ids: bool, rows: int, vendor: str) -> str:
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    fields = _insert_fields(model, database_ids)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    returning = f" RETURNING {quote(model._meta.pk.column)}" if database_ids else ""
    return (
        f"INSERT INTO {quote(model._meta.db_table)}"  # noqa: S608 - fixed text; values are parameters
        f" ({', '.join(quote(field.column) for field in fields)})"
        f" VALUES {', '.join([row] * rows)}{returning}"
    )


# --- Prepared statements ------------------------------------------------------------------------
#
# Django sends every query as text with its values inlined (client-side binding) and never
# prepares one, so PostgreSQL parses, analyses and plans it on every call. For the statements run
# on every request or page that was most of the database's time: a timeline page took 2.6 ms to
# answer as text and 0.45 ms prepared on the 1M-activity data set (docs/benchmarks-feed.md); the
# one-account visibility question 0.62 ms and 0.18 ms, the token check 0.30 and 0.14 ms, on the
# real-time benchmark's data (docs/benchmarks.md). Those statements are written with
# placeholders for every value, so their text depends only on their shape (filters, cursor or
# not, the user's role, the policy) and one prepared statement per shape serves every user and
# page. Only the statements run through `prepared_cursor` are prepared: Django's own cursors are
# client-side binding cursors, which psycopg never prepares, whatever the connection's threshold.
# The feed's pages (feed/sqlrows.py), the visibility policy (crm/visibility.py) and the token
# check (config/authentication.py) use it.
#
# A transaction-pooling proxy (PgBouncer before 1.21) would break server-side prepared
# statements; Tidings pools in-process (psycopg_pool), where each statement stays with its
# connection.

_ONLY_WHEN_ASKED = 2**31  # psycopg's automatic threshold: never reached; `prepare=True` decides

# Connections (psycopg's) on which `plan_cache_mode` is set. PostgreSQL's default (auto) kept
# planning the home feed's statements afresh on every call, judging the generic plan costlier
# when it was not: forced generic, the home page's two statements took 0.85 and 1.6 ms instead of
# 1.9 and 3.2 ms for the user following 500 accounts. The setting only concerns prepared
# statements, and on these connections only these are prepared.
_GENERIC_PLANS: weakref.WeakSet[Any] = weakref.WeakSet()


def _prepared_classes() -> tuple[type[Any], type[Any]] | None:
    """The prepared cursor, and the debug wrapper that logs its statements (PostgreSQL with
    psycopg 3; None elsewhere)."""
    try:
        from django.db.backends.postgresql.base import (  # type: ignore[attr-defined]
            CursorDebugWrapper,
            ServerBindingCursor,
        )
    except ImportError:  # psycopg 2: no server-side binding through Django
        return None

    class PreparedCursor(ServerBindingCursor):  # type: ignore[misc, valid-type]
        """A server-binding cursor whose every statement is prepared (once per connection)."""

        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            kwargs["prepare"] = True
            return super().execute(query, params, **kwargs)

    class PreparedDebugWrapper(CursorDebugWrapper):  # type: ignore[misc, valid-type]
        """Logs the statement with its values, as Django does for server-side binding (it reads
        a client-side cursor's last query, which a prepared execution leaves unset)."""

        def execute(self, sql: Any, params: Any = None) -> Any:
            with self.debug_sql(self.db.ops.compose_sql(sql, params)):
                return self._execute_with_wrappers(sql, params, many=False, executor=self._execute)

    return PreparedCursor, PreparedDebugWrapper


def _new_prepared_cursor(db: BaseDatabaseWrapper, cursor_class: type[Any]) -> Any:
    """A `cursor_class` on the connection, set up as Django's `create_cursor` sets up its own."""
    from django.db.backends.postgresql.base import TIMESTAMPTZ_OID  # type: ignore[attr-defined]
    from django.db.backends.postgresql.psycopg_any import register_tzloader
    from psycopg.pq import Format

    raw = db.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = _ONLY_WHEN_ASKED
    cursor = cursor_class(raw)
    tzloader = raw.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
    if db.timezone != tzloader.timezone:
        register_tzloader(db.timezone, cursor)
    return cursor


def _use_generic_plans(raw: Any) -> None:
    # In autocommit only: a SET inside a transaction would be undone by its rollback. Set up as
    # Django sets up the connection's time zone: not a query of the page, so not logged.
    if raw not in _GENERIC_PLANS and raw.autocommit:
        raw.execute("SET plan_cache_mode = force_generic_plan")
        _GENERIC_PLANS.add(raw)


_PREPARED = _prepared_classes()

# The prepared cursor of each connection, kept between requests: making Django's cursor and then
# this one (two psycopg cursors, each with its adapter map) was ~8 % of a timeline page's call.
# A cursor is taken out while in use, so a nested `prepared_cursor` makes one of its own.
_KEPT_CURSORS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


@contextmanager
def prepared_cursor() -> Iterator[Any]:
    """`connection.cursor()`, whose statements PostgreSQL (psycopg 3) prepares and keeps for the
    connection; an ordinary cursor elsewhere. Django's wrapper stays around it, so query logging,
    `CaptureQueriesContext`, execute wrappers and error translation see these queries as any other.
    Values must be parameters (`%s` / `%(name)s`): the text is the prepared statement's key."""
    # The connection of this thread or task, looked up once: each attribute read through
    # `django.db.connection` looks it up again (~4.5 us, asgiref's Local), and this function
    # read nine of them (~45 us of a ~1 ms page).
    db = connections[DEFAULT_DB_ALIAS]
    if _PREPARED is None or db.vendor != "postgresql":
        with db.cursor() as wrapper:
            yield wrapper
        return
    cursor_class, debug_wrapper = _PREPARED
    # What `connection.cursor()` does before it makes a cursor (base.BaseDatabaseWrapper._cursor).
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    raw = db.connection
    _use_generic_plans(raw)
    cursor = _KEPT_CURSORS.pop(raw, None)
    if cursor is None or cursor.closed:
        with db.wrap_database_errors:
            cursor = _new_prepared_cursor(db, cursor_class)
    wrapper = debug_wrapper(cursor, db) if db.queries_logged else db.make_cursor(cursor)
    try:
        yield wrapper
    finally:
        if not cursor.closed and not raw.closed:
            _KEPT_CURSORS[raw] = cursor
