"""REST API tokens: how `Authorization: Token <key>` is checked on every API call."""

from __future__ import annotations

import functools
from typing import Any

from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from crm.models import User
from crm.sqlrows import ModelColumns, columns_of


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication, with its one query written by hand.

    Same answers and messages as DRF's (the OpenAPI schema still names it `tokenAuth`:
    drf-spectacular matches subclasses). Building and compiling `select_related("user")
    .get(key=...)` cost more than the query itself on every API call, the post path included
    (docs/benchmarks.md)."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        token_columns, user_columns = _columns()
        with connection.cursor() as cursor:
            cursor.execute(_token_sql(), [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        token = token_columns.load(row, 0)
        user = user_columns.load(row, token_columns.width)
        if token is None or user is None or not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        Token._meta.get_field("user").set_cached_value(token, user)  # type: ignore[union-attr]
        return (user, token)


def _columns() -> tuple[ModelColumns[Token], ModelColumns[User]]:
    return columns_of(Token, "k", connection), columns_of(User, "u", connection)


@functools.lru_cache(maxsize=4)
def _token_sql() -> str:
    """The token with key `%s` and its user (what `select_related("user")` selects)."""
    token, user = _columns()
    quote = connection.ops.quote_name
    return (
        f"SELECT {token.select}, {user.select}"  # noqa: S608 - fixed text; the key is a parameter
        f" FROM {quote(Token._meta.db_table)} k"
        f" INNER JOIN {quote(User._meta.db_table)} u ON u.{quote('id')} = k.{quote('user_id')}"
        f" WHERE k.{quote('key')} = %s"
    )
