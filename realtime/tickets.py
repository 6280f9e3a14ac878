"""Single-use, short-lived tickets for WebSocket clients that have no session cookie."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from crm.sqlrows import ModelColumns, columns_of, prepared_cursor
from realtime.models import Ticket


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_ticket(*, user: Any) -> tuple[str, int]:
    """A new ticket for `user` and its lifetime in seconds."""
    ttl = settings.TIDINGS_TICKET_TTL_SECONDS
    key = secrets.token_urlsafe(32)
    Ticket.objects.create(
        key_hash=_hash(key), user=user, expires_at=timezone.now() + timedelta(seconds=ttl)
    )
    return key, ttl


def redeem_ticket(key: str) -> Any | None:
    """The active user the ticket was issued to, or None; a ticket works once, before it expires.

    Two prepared statements, no transaction around them: the conditional UPDATE alone decides
    (of two concurrent redemptions only one changes the row), and its RETURNING names the user.
    Through the ORM, in a transaction, this was four statements and a third of a connect's
    database time (docs/benchmarks.md)."""
    if not key or len(key) > 128:
        return None
    db = connections[DEFAULT_DB_ALIAS]
    now = timezone.now()
    with prepared_cursor() as cursor:
        cursor.execute(
            _redeem_sql(db.alias),
            [db.ops.adapt_datetimefield_value(now)] * 2 + [_hash(key)],
        )
        used = cursor.fetchone()
        if used is None:
            return None
        cursor.execute(_user_sql(db.alias), [used[0]])
        row = cursor.fetchone()
    user = _user_columns(db.alias).load(row, 0) if row is not None else None
    return user if user is not None and user.is_active else None


@lru_cache(maxsize=8)
def _redeem_sql(alias: str) -> str:
    quote = connections[alias].ops.quote_name
    return (
        f"UPDATE {quote(Ticket._meta.db_table)} SET {quote('used_at')} = %s"  # noqa: S608 - fixed text; values are parameters
        f" WHERE {quote('used_at')} IS NULL AND {quote('expires_at')} > %s"
        f" AND {quote('key_hash')} = %s RETURNING {quote('user_id')}"
    )


@lru_cache(maxsize=8)
def _user_columns(alias: str) -> ModelColumns[Any]:
    db = connections[alias]
    return columns_of(get_user_model(), "u", db)


@lru_cache(maxsize=8)
def _user_sql(alias: str) -> str:
    quote = connections[alias].ops.quote_name
    table = quote(get_user_model()._meta.db_table)
    return f"SELECT {_user_columns(alias).select} FROM {table} u WHERE u.{quote('id')} = %s"  # noqa: S608 - fixed text; values are parameters


def prune_expired_tickets() -> int:
    deleted, _ = Ticket.objects.filter(expires_at__lt=timezone.now() - timedelta(hours=1)).delete()
    return deleted
