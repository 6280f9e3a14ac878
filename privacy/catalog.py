"""Every column of every table that can hold text, and where a person's data sits in them.

This is the net under the structural erasure in `privacy.actions`: whatever place the actions
do not know by name (a Django admin log line, an opportunity named after the person, an outbox
event, an app added later) is still found here, because the list comes from the installed
models, not from a hand-kept list. The tests check it against the database's own catalog.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import connection, models
from django.db.models import F, Func, Value
from django.db.models.functions import Cast

from privacy.models import Erasure
from privacy.redaction import Person, Redactor

# Columns searched and rewritten, by the kind of field Django stores them in.
TEXT_FIELDS = (models.CharField, models.TextField)
# The erasure records themselves say nothing personal (kind, id, counts).
SKIPPED_MODELS = (Erasure,)


@dataclass(frozen=True)
class Column:
    model: type[models.Model]
    field: models.Field[Any, Any]

    @property
    def table(self) -> str:
        return self.model._meta.db_table

    @property
    def name(self) -> str:
        return self.field.column

    @property
    def is_json(self) -> bool:
        return isinstance(self.field, models.JSONField)

    @property
    def is_binary(self) -> bool:
        return isinstance(self.field, models.BinaryField)


@dataclass(frozen=True)
class Occurrence:
    table: str
    column: str
    row: Any  # the primary key
    value: Any  # the text, the JSON value, or raw bytes as text

    def as_json(self) -> dict[str, Any]:
        return {"table": self.table, "column": self.column, "row": self.row, "text": self.value}


def columns() -> Iterator[Column]:
    """Every concrete text, JSON or binary column of every installed model with its own table."""
    for model in apps.get_models(include_auto_created=True):
        if model._meta.proxy or not model._meta.managed or model in SKIPPED_MODELS:
            continue
        for field in model._meta.concrete_fields:
            if field.primary_key:
                continue
            if isinstance(field, (*TEXT_FIELDS, models.JSONField, models.BinaryField)):
                yield Column(model, field)


def _searchable(column: Column) -> Any:
    """The column as text the database can match a regular expression against."""
    if column.is_binary:
        if connection.vendor == "postgresql":
            # 'escape' keeps ASCII as it is (addresses, most names) and writes other bytes as
            # octal escapes.
            return Func(
                F(column.field.name),
                Value("escape"),
                function="encode",
                output_field=models.TextField(),
            )
        return Cast(column.field.name, models.TextField())
    if column.is_json:
        return Cast(column.field.name, models.TextField())
    return F(column.field.name)


def matching_rows(column: Column, person: Person) -> models.QuerySet[Any]:
    """Rows whose `column` names `person` (found by the database), as (pk, value) pairs."""
    return (
        column.model._default_manager.annotate(_privacy_text=_searchable(column))
        .filter(_privacy_text__iregex=person.pattern.removeprefix("(?i)"))
        .values_list("pk", column.field.name)
        .order_by("pk")
    )


def _as_text(value: Any) -> Any:
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return value


def occurrences(person: Person) -> Iterator[Occurrence]:
    """Every value of every column that names `person`."""
    redactor = Redactor(person)
    for column in columns():
        for pk, value in matching_rows(column, person).iterator():
            if _changed(redactor, column, value) is not None:
                yield Occurrence(column.table, column.name, pk, _as_text(value))
    for table, key, name in database_only_columns():
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {quote(key)}, {quote(name)} FROM {quote(table)}"  # noqa: S608 -- names from the database's catalog, quoted
                f" WHERE {quote(name)} ~* %s ORDER BY 1",
                [person.pattern.removeprefix("(?i)")],
            )
            for pk, value in cursor.fetchall():
                if redactor.text(value) != value:
                    yield Occurrence(table, name, pk, value)


def database_only_columns() -> list[tuple[str, str, str]]:
    """(table, primary key column, column) of the text columns of the models' tables that no
    model field holds: copies the database keeps itself, such as `feed_activity.rendered` (each
    activity's JSON, written by triggers from its other columns and its people's names:
    migration feed 0010). The export lists what they hold; the erasure leaves them to their
    triggers, which rewrite them when it rewrites the columns they copy. PostgreSQL only."""
    if connection.vendor != "postgresql":
        return []
    models_by_table = {
        model._meta.db_table: model
        for model in apps.get_models(include_auto_created=True)
        if model._meta.managed and not model._meta.proxy
    }
    known = {
        (table, field.column)
        for table, model in models_by_table.items()
        for field in model._meta.concrete_fields
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema()"
            " AND data_type IN ('text', 'character varying', 'character')"
            " ORDER BY table_name, column_name"
        )
        found = cursor.fetchall()
    return [
        (table, models_by_table[table]._meta.pk.column, name)
        for table, name in found
        if table in models_by_table and (table, name) not in known
    ]


def _changed(redactor: Redactor, column: Column, value: Any) -> Any:
    """The redacted value, or None when redaction leaves it as it was (the database's match
    and Python's differ only in edge cases, e.g. JSON escapes)."""
    if value is None:
        return None
    if column.is_binary:
        new: Any = redactor.raw(bytes(value))
        return new if new != bytes(value) else None
    new = redactor.json(value) if column.is_json else redactor.text(value)
    if new == value:
        return None
    max_length = getattr(column.field, "max_length", None)
    if isinstance(new, str) and max_length:
        new = new[:max_length]
    return new


def sweep(person: Person) -> dict[str, list[Any]]:
    """Replace `person`'s data in every column of every table; the keys of rows changed, per
    table.

    Runs inside the caller's transaction; rows are written one by one through the ORM (so JSON
    and lengths are the fields' own), which is fine for the few rows one person has.
    """
    redactor = Redactor(person)
    changed: dict[str, list[Any]] = {}
    for column in columns():
        manager = column.model._default_manager
        for pk, value in list(matching_rows(column, person)):
            new = _changed(redactor, column, value)
            if new is None:
                continue
            manager.filter(pk=pk).update(**{column.field.name: new})
            changed.setdefault(column.table, []).append(pk)
    return changed
