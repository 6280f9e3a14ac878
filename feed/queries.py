"""Reads of the feed: one function per question, keyset pagination, a fixed number of queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from crm.models import Account, AccountTeamMember
from crm.visibility import AccountNotFound, visible_accounts
from feed.cursors import decode_cursor, encode_cursor
from feed.models import Activity, Follow

PAGE_SIZE = 25


@dataclass
class Page:
    results: list[Activity]
    next: str | None


def _visible_activities(user: Any) -> QuerySet[Activity]:
    return Activity.objects.filter(
        deleted_at__isnull=True, account__in=visible_accounts(user)
    ).select_related("author")


def _page(queryset: QuerySet[Activity], before: str | None, size: int) -> Page:
    if before:
        occurred_at, pk = decode_cursor(before)
        queryset = queryset.filter(
            Q(occurred_at__lt=occurred_at) | Q(occurred_at=occurred_at, pk__lt=pk)
        )
    rows = list(queryset.order_by("-occurred_at", "-id")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    cursor = encode_cursor(rows[-1].occurred_at, rows[-1].pk) if more and rows else None
    return Page(results=rows, next=cursor)


def account_timeline(
    user: Any,
    account: Account,
    *,
    before: str | None = None,
    kind: str | None = None,
    size: int = PAGE_SIZE,
) -> Page:
    """A page of `account`'s history, newest first, as `user` may see it.

    The caller has already fetched `account` through the visibility policy.
    Raises ValidationError for a malformed cursor.
    """
    queryset = Activity.objects.filter(account=account, deleted_at__isnull=True).select_related(
        "author"
    )
    if kind:
        queryset = queryset.filter(kind=kind)
    return _page(queryset, before, size)


def recent_activity(user: Any, *, before: str | None = None, size: int = PAGE_SIZE) -> Page:
    """Recent activity across every account `user` can see (the home page until follows land)."""
    return _page(_visible_activities(user).select_related("account"), before, size)


def get_visible_activity(user: Any, activity_id: int | str) -> Activity:
    """The activity if `user` may see its account and it is not deleted; else AccountNotFound."""
    try:
        pk = int(activity_id)
    except (TypeError, ValueError):
        raise AccountNotFound() from None
    activity = _visible_activities(user).filter(pk=pk).first()
    if activity is None:
        raise AccountNotFound()
    return activity


def followed_account_ids(user: Any) -> set[int]:
    """Accounts `user` follows and can see: explicit follows, plus owned and account-team ones."""
    if not getattr(user, "is_authenticated", False):
        return set()
    followed = Q(pk__in=Follow.objects.filter(user_id=user.pk).values("account_id"))
    followed |= Q(owner_id=user.pk)
    followed |= Q(pk__in=AccountTeamMember.objects.filter(user_id=user.pk).values("account_id"))
    return set(visible_accounts(user).filter(followed).values_list("pk", flat=True))


def is_following(user: Any, account: Account) -> bool:
    return account.pk in followed_account_ids(user)
