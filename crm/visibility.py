"""The one visibility policy: which accounts a user can see.

Every page, API call, search, feed, WebSocket subscription, notification, mention and export asks
this module. "Not yours" and "does not exist" look the same to the caller: both raise
`AccountNotFound`, a 404.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.core.exceptions import EmptyResultSet
from django.db import connection, connections
from django.db.models import OuterRef, Q, QuerySet
from django.http import Http404

from crm.models import Account, AccountTeamMember, Team, User
from crm.sqlrows import JoinedColumns, columns_of, prepared_cursor


class AccountNotFound(Http404):
    """The account does not exist, or the user may not see it; the two are never told apart."""

    def __init__(self) -> None:
        super().__init__("Not found.")


def live_accounts() -> QuerySet[Account]:
    """Accounts that are neither merged away nor archived."""
    return Account.objects.filter(merged_into__isnull=True, archived_at__isnull=True)


def visible_accounts(user: Any) -> QuerySet[Account]:
    """Every live account `user` may see.

    - inactive or anonymous: none
    - admin and support: all (support serves requests on every account by default)
    - rep: owned, their team's, and accounts they are granted on
    - manager: as a rep, plus the accounts of the teams they manage
    """
    accounts = live_accounts()
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return accounts.none()
    if user.is_admin or user.role == User.Role.SUPPORT:
        return accounts
    granted = AccountTeamMember.objects.filter(user_id=user.pk).values("account_id")
    condition = Q(owner_id=user.pk) | Q(pk__in=granted)
    if user.team_id is not None:
        condition |= Q(team_id=user.team_id)
    if user.role == User.Role.MANAGER:
        condition |= Q(team_id__in=Team.objects.filter(managers=user.pk).values("pk"))
    return accounts.filter(condition)


@dataclass(frozen=True)
class _PolicyInputs:
    """Everything about a user that `visible_accounts` reads (and nothing else: it is given this
    in place of the user when compiled, so a new input fails loudly until it is added here)."""

    pk: int
    is_active: bool
    is_admin: bool
    role: str
    team_id: int | None
    database: str
    is_authenticated: bool = True


def visible_accounts_sql(user: Any) -> tuple[str, tuple[Any, ...]] | None:
    """`visible_accounts(user)` as SQL selecting one column, `pk`, for hand-written reads; None
    when the user sees no account. The SQL depends only on the user's role, team and id (the
    rest is subqueries PostgreSQL evaluates), so it is compiled once per such user: compiling it
    cost more than the query it is pasted into (docs/benchmarks-feed.md)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    inputs = _PolicyInputs(
        pk=user.pk,
        is_active=user.is_active,
        is_admin=user.is_admin,
        role=user.role,
        team_id=user.team_id,
        database=connection.alias,
    )
    return _compiled_visibility(inputs)


@functools.lru_cache(maxsize=4096)
def _compiled_visibility(inputs: _PolicyInputs) -> tuple[str, tuple[Any, ...]] | None:
    try:
        sql, params = visible_accounts(inputs).order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:
        return None
    return sql, tuple(params)


def can_see_account(user: Any, account_id: int) -> bool:
    """Whether `user` may see the account with this id: the compiled policy as one prepared
    statement. The queryset this replaced (`visible_accounts(user).filter(pk=...).exists()`) was
    built and compiled on every call, and a WebSocket subscription asks it on every connect."""
    try:
        pk = int(account_id)
    except (TypeError, ValueError):
        return False
    visible = visible_accounts_sql(user)
    if visible is None or not 0 < pk <= _MAX_PK:
        return False
    sql, params = visible
    with prepared_cursor() as cursor:
        cursor.execute(_account_is_among_sql(sql), (pk, *params))
        return cursor.fetchone() is not None


# The largest primary key a bigint column holds: a larger id names no account.
_MAX_PK = 2**63 - 1


def get_visible_account(user: Any, account_id: int | str) -> Account:
    """The account with this id, its owner and team loaded, if `user` may see it; raises
    `AccountNotFound` otherwise.

    One hand-written statement: the policy's compiled SQL (`visible_accounts_sql`) as a condition
    on the account and its joins. Building and compiling the equivalent queryset was 0.66 ms
    of the 1.09 ms this took on every post (docs/benchmarks.md); prepared, PostgreSQL no longer
    plans it on every call either (crm.sqlrows.prepared_cursor)."""
    try:
        pk = int(account_id)
    except (TypeError, ValueError):
        raise AccountNotFound() from None
    visible = visible_accounts_sql(user)
    if visible is None or not 0 < pk <= _MAX_PK:
        raise AccountNotFound()
    sql, params = visible
    with prepared_cursor() as cursor:
        cursor.execute(_one_account_sql(sql), (pk, *params))
        row = cursor.fetchone()
    if row is None:
        raise AccountNotFound()
    account = _account_columns(connection.alias).load(row)
    assert account is not None  # noqa: S101 - the row was found by the account's key
    account._seen_by = (getattr(user, "pk", None), time.monotonic())  # type: ignore[attr-defined]
    return account


@functools.lru_cache(maxsize=8)
def _account_columns(alias: str) -> JoinedColumns[Account]:
    """An account `a` with its owner `o` and team `t` (what `select_related("owner", "team")`
    loads), for database `alias`."""
    db = connections[alias]
    return JoinedColumns(
        columns_of(Account, "a", db),
        [("owner", columns_of(User, "o", db)), ("team", columns_of(Team, "t", db))],
    )


@functools.lru_cache(maxsize=256)
def _one_account_sql(visible_sql: str) -> str:
    """The account `%s` with its owner and team, if among `visible_sql`'s ids (both keys are NOT
    NULL, hence inner joins)."""
    quote = connection.ops.quote_name
    return (
        f"SELECT {_account_columns(connection.alias).select}"  # noqa: S608 - fixed text; values are parameters
        f" FROM {quote(Account._meta.db_table)} a"
        f" INNER JOIN {quote(User._meta.db_table)} o ON o.{quote('id')} = a.{quote('owner_id')}"
        f" INNER JOIN {quote(Team._meta.db_table)} t ON t.{quote('id')} = a.{quote('team_id')}"
        f" WHERE a.{quote('id')} = %s AND a.{quote('id')} IN ({visible_sql})"
    )


@functools.lru_cache(maxsize=256)
def _account_is_among_sql(visible_sql: str) -> str:
    """One row if the account `%s` is among `visible_sql`'s ids, none otherwise."""
    quote = connection.ops.quote_name
    return (
        f"SELECT 1 FROM {quote(Account._meta.db_table)} a"  # noqa: S608 - fixed text; values are parameters
        f" WHERE a.{quote('id')} = %s AND a.{quote('id')} IN ({visible_sql})"
    )


# How long the verdict of `get_visible_account` on an account it returned stands as proof for
# `require_visible_account`: the span of one request (a view checks, then calls the action).
PROOF_SECONDS = 1.0


def require_visible_account(user: Any, account: Account) -> None:
    """Raise `AccountNotFound` unless `user` may see `account`.

    An account that `get_visible_account` returned for this same user within the last
    PROOF_SECONDS was decided already (a view checked it, then called the action): the policy is
    not asked twice in one request. It was the largest single cost of a post (docs/benchmarks.md).
    """
    seen_by = getattr(account, "_seen_by", None)
    is_proven = (
        seen_by is not None
        and getattr(user, "pk", None) is not None
        and seen_by[0] == user.pk
        and time.monotonic() - seen_by[1] < PROOF_SECONDS
    )
    if not is_proven:
        get_visible_account(user, account.pk)


def _sees(*, account: Any, owner: Any, team: Any) -> Q:
    """The users who may see an account, as a condition on `User`: the same policy as
    `visible_accounts`, read backwards. `account`, `owner` and `team` are values, or references
    to an outer query's account when it is asked for many accounts at once."""
    return (
        Q(is_superuser=True)
        | Q(role__in=[User.Role.ADMIN, User.Role.SUPPORT])
        | Q(pk=owner)
        | Q(pk__in=AccountTeamMember.objects.filter(account=account).values("user_id"))
        | Q(team_id=team)
        | Q(role=User.Role.MANAGER, managed_teams=team)
    )


def people_who_can_see(account: Account) -> QuerySet[User]:
    """Active users who may see `account`: the same policy as `visible_accounts`, read backwards."""
    if account.merged_into_id is not None or account.archived_at is not None:
        return User.objects.none()
    condition = _sees(account=account.pk, owner=account.owner_id, team=account.team_id)
    return User.objects.filter(condition, is_active=True).distinct()


def people_who_can_see_each(account_ids: set[int], among: set[int]) -> dict[int, set[int]]:
    """`people_who_can_see` for many accounts at once, narrowed to the users `among`: account id
    -> who of them may see it (empty for an account that is gone, merged or archived).

    One query on PostgreSQL whatever the number of accounts (the notifications of a batch of
    inbound email ask it for ~50 accounts; asking each was most of their statements)."""
    seen: dict[int, set[int]] = {pk: set() for pk in account_ids}
    if not account_ids or not among:
        return seen
    if connection.vendor != "postgresql":
        for account in live_accounts().filter(pk__in=account_ids):
            seers = people_who_can_see(account).filter(pk__in=among)
            seen[account.pk] = set(seers.values_list("pk", flat=True))
        return seen
    # Inside the per-account subquery, the team-member subquery is one level further out.
    condition = _sees(
        account=OuterRef(OuterRef("pk")), owner=OuterRef("owner_id"), team=OuterRef("team_id")
    )
    users = User.objects.filter(condition, is_active=True, pk__in=among).values("pk")
    rows = live_accounts().filter(pk__in=account_ids).annotate(seers=ArraySubquery(users))
    for pk, seers in rows.values_list("pk", "seers"):
        seen[pk] = set(seers)
    return seen
