"""REST API tokens: how `Authorization: Token <key>` is checked on every API call."""

from __future__ import annotations

import functools
from typing import Any

from django.db import connection, connections
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from crm.models import User
from crm.sqlrows import JoinedColumns, columns_of, prepared_cursor


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication, with its one query written by hand and prepared.

    Same answers and messages as DRF's (the OpenAPI schema still names it `tokenAuth`:
    drf-spectacular matches subclasses). Building and compiling `select_related("user")
    .get(key=...)` cost more than the query itself on every API call, the post path included,
    and planning it again on every call about as much as its round trip (docs/benchmarks.md)."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        with prepared_cursor() as cursor:
            cursor.execute(_token_sql(), [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        token = _token_columns(connection.alias).load(row)
        user = token.user if token is not None else None
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (user, token)


@functools.lru_cache(maxsize=8)
def _token_columns(alias: str) -> JoinedColumns[Token]:
    """A token `k` with its user `u` (what `select_related("user")` loads), for database
    `alias`."""
    db = connections[alias]
    return JoinedColumns(columns_of(Token, "k", db), [("user", columns_of(User, "u", db))])


@functools.lru_cache(maxsize=4)
def _token_sql() -> str:
    """The token with key `%s` and its user."""
    quote = connection.ops.quote_name
    return (
        f"SELECT {_token_columns(connection.alias).select}"  # noqa: S608 - fixed text; the key is a parameter
        f" FROM {quote(Token._meta.db_table)} k"
        f" INNER JOIN {quote(User._meta.db_table)} u ON u.{quote('id')} = k.{quote('user_id')}"
        f" WHERE k.{quote('key')} = %s"
    )
