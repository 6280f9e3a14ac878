"""Model instances from hand-written SQL, built the way the ORM builds them.

`ModelColumns` is the select list of one model under a table alias, and the conversion of that
run of a result row into an instance with the database converters the ORM would apply (JSON,
SQLite datetimes, ...). Hand-written reads use it where Django's query compiler would cost more
than the query: the feed's pages (feed/sqlrows.py, docs/benchmarks-feed.md) and the visibility
policy's one-account question (crm/visibility.py, docs/benchmarks.md). It lives in `crm` because
imports go one way (`feed -> crm`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from django.db import connections
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
