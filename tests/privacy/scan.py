"""An independent look for a person's data: every text, JSON and binary column of every table,
read from the database's own catalog (not from the models), and every file under a folder."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from django.db import connection

TEXT_TYPES_POSTGRESQL = ("text", "character varying", "character", "json", "jsonb", "bytea")
TEXT_TYPES_SQLITE = ("text", "varchar", "char", "clob", "blob", "json")


def _columns() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND data_type = ANY(%s)",
                [list(TEXT_TYPES_POSTGRESQL)],
            )
            return list(cursor.fetchall())
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = [name for (name,) in cursor.fetchall() if not name.startswith("sqlite_")]
        found = []
        for table in tables:
            cursor.execute(f'PRAGMA table_info("{table}")')
            for _, column, kind, *_ in cursor.fetchall():
                if kind.lower().split("(")[0] in TEXT_TYPES_SQLITE:
                    found.append((table, column))
        return found


def _text(value: object) -> str:
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _digits_of(terms: Iterable[str]) -> list[str]:
    return [d for d in (re.sub(r"\D", "", t) for t in terms) if len(d) >= 6]


def names_them(text: str, terms: Iterable[str]) -> bool:
    """Case-insensitive, also as JSON escapes them ("\u00e9"), and phone numbers whatever
    separates their digits."""
    terms = list(terms)
    lowered = text.lower()
    words = [t.lower() for t in terms if not re.fullmatch(r"[\d\s+().-]+", t)]
    words += [json.dumps(w)[1:-1] for w in words]
    if any(w in lowered for w in words):
        return True
    digits = re.sub(r"\D", "", text)
    return any(d in digits for d in _digits_of(terms))


def database_hits(terms: Iterable[str]) -> set[tuple[str, str, str]]:
    """(table, column, primary key) of every value that names one of `terms`."""
    terms = list(terms)
    hits = set()
    with connection.cursor() as cursor:
        for table, column in _columns():
            key = connection.introspection.get_primary_key_column(cursor, table) or column
            quote = connection.ops.quote_name
            # Names come from the catalog, quoted: nothing here is user input.
            cursor.execute(f"SELECT {quote(key)}, {quote(column)} FROM {quote(table)}")  # noqa: S608
            for pk, value in cursor.fetchall():
                if value is not None and names_them(_text(value), terms):
                    hits.add((table, column, str(pk)))
    return hits


def file_hits(folder: Path, terms: Iterable[str]) -> set[str]:
    terms = list(terms)
    if not folder.exists():
        return set()
    return {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and names_them(p.read_bytes().decode("utf-8", "replace"), terms)
    }
