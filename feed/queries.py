"""Reads of the feed: one function per question, keyset pagination, a fixed number of queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import JSONField, OuterRef, Prefetch, Q, QuerySet, Subquery

from crm.models import Account, AccountTeamMember
from crm.visibility import AccountNotFound, visible_accounts
from feed.cursors import decode_cursor, encode_cursor
from feed.models import Activity, Follow, ThreadSubscription

PAGE_SIZE = 25


@dataclass
class Page:
    results: list[Activity]
    next: str | None


def _replies() -> Prefetch:
    replies = Activity.objects.filter(deleted_at__isnull=True).select_related("author", "assignee")
    return Prefetch("replies", queryset=replies.order_by("occurred_at", "id"))


def _threads(queryset: QuerySet[Activity]) -> QuerySet[Activity]:
    """Thread roots with their replies: two queries however long the page."""
    return (
        queryset.filter(deleted_at__isnull=True, parent__isnull=True)
        .select_related("author", "assignee")
        .prefetch_related(_replies())
    )


def _visible_activities(user: Any) -> QuerySet[Activity]:
    return Activity.objects.filter(
        deleted_at__isnull=True, account__in=visible_accounts(user)
    ).select_related("author", "assignee")


def _page(queryset: QuerySet[Activity], before: str | None, size: int) -> Page:
    if before:
        occurred_at, pk = decode_cursor(before)
        # The plain bound first: it is what lets the (…, occurred_at, id) indexes seek to the
        # cursor instead of filtering every newer row (docs/benchmarks-feed.md).
        queryset = queryset.filter(occurred_at__lte=occurred_at).filter(
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
    author: str | None = None,
    q: str | None = None,
    size: int = PAGE_SIZE,
) -> Page:
    """A page of `account`'s threads, newest first, replies in place, as `user` may see it.

    The account's contacts' and opportunities' activity is on the account, so it is rolled up here.
    The caller has already fetched `account` through the visibility policy. `kind` and `author`
    filter the thread roots; `q` searches their text. Raises ValidationError for a bad cursor.
    """
    queryset = _threads(Activity.objects.filter(account=account))
    if kind:
        queryset = queryset.filter(kind=kind)
    if author:
        queryset = queryset.filter(author__username=author)
    if q:
        queryset = queryset.filter(Q(body__icontains=q) | Q(subject__icontains=q))
    return _page(queryset, before, size)


def _followed_accounts_with_kinds(user: Any) -> dict[int, list[str]]:
    """Visible followed accounts -> the kinds chosen for each ([] = all), in one query."""
    if not getattr(user, "is_authenticated", False):
        return {}
    kinds = Follow.objects.filter(user_id=user.pk, account_id=OuterRef("pk")).values("kinds")[:1]
    rows = (
        visible_accounts(user)
        .filter(_followed(user))
        .annotate(kinds=Subquery(kinds, output_field=JSONField()))
        .values_list("pk", "kinds")
    )
    return {pk: chosen or [] for pk, chosen in rows}


def home_feed(user: Any, *, before: str | None = None, size: int = PAGE_SIZE) -> Page:
    """Everything on the accounts and threads `user` follows, newest first, replies included.

    Per-follow preferences narrow an account to the kinds chosen; a muted thread is left out
    whatever follows it. Three queries a page: follows, thread choices, the page. Terms that do
    not apply are left out of the page query, so PostgreSQL can plan it on the account index.
    """
    accounts = _followed_accounts_with_kinds(user)
    choices = list(
        ThreadSubscription.objects.filter(user_id=user.pk).values_list("thread_id", "is_muted")
    )
    followed_threads = [thread for thread, is_muted in choices if not is_muted]
    muted = [thread for thread, is_muted in choices if is_muted]
    everything = [pk for pk, kinds in accounts.items() if not kinds]
    wanted = Q(account_id__in=everything) if everything else Q(pk__in=[])
    for account_id, kinds in accounts.items():
        if kinds:
            wanted |= Q(account_id=account_id, kind__in=kinds)
    if followed_threads:
        in_threads = Q(pk__in=followed_threads) | Q(parent_id__in=followed_threads)
        wanted |= in_threads & Q(account__in=visible_accounts(user))
    if not accounts and not followed_threads:
        return Page(results=[], next=None)
    queryset = Activity.objects.filter(wanted, deleted_at__isnull=True).select_related(
        "author", "assignee", "account", "parent"
    )
    if muted:
        queryset = queryset.exclude(Q(pk__in=muted) | Q(parent_id__in=muted))
    return _page(queryset, before, size)


def get_visible_activity(user: Any, activity_id: int | str) -> Activity:
    """The activity if `user` may see its account and it is not deleted; else AccountNotFound."""
    try:
        pk = int(activity_id)
    except (TypeError, ValueError):
        raise AccountNotFound() from None
    activity = _visible_activities(user).prefetch_related(_replies()).filter(pk=pk).first()
    if activity is None:
        raise AccountNotFound()
    return activity


def _followed(user: Any) -> Q:
    """Explicit follows, plus the quiet auto-follow of owners and account-team members."""
    followed = Q(pk__in=Follow.objects.filter(user_id=user.pk).values("account_id"))
    followed |= Q(owner_id=user.pk)
    followed |= Q(pk__in=AccountTeamMember.objects.filter(user_id=user.pk).values("account_id"))
    return followed


def followed_account_ids(user: Any) -> set[int]:
    """Accounts `user` follows and can see: explicit follows, plus owned and account-team ones."""
    if not getattr(user, "is_authenticated", False):
        return set()
    return set(visible_accounts(user).filter(_followed(user)).values_list("pk", flat=True))


def followed_account_names(user: Any) -> dict[int, str]:
    """Id -> name of the accounts `user` follows (one query), for a live home page."""
    if not getattr(user, "is_authenticated", False):
        return {}
    followed = visible_accounts(user).filter(_followed(user))
    return dict(followed.values_list("pk", "name"))


def follow_choice(user: Any, account: Account) -> Follow | None:
    """`user`'s preferences for `account` (kinds, delivery), if they ever chose any."""
    return Follow.objects.filter(user_id=user.pk, account=account).first()


def is_following(user: Any, account: Account) -> bool:
    return account.pk in followed_account_ids(user)


SEARCH_LIMIT = 20


def search(user: Any, q: str) -> dict[str, list[Any]]:
    """Accounts, contacts and activities `user` can see that match `q` (at most 20 of each).

    Activities use PostgreSQL full-text search (web-search syntax, English stemming) on
    PostgreSQL, and a case-insensitive substring match on SQLite.
    """
    from crm.models import Contact
    from crm.queries import search_accounts

    q = q.strip()[:200]
    if not q:
        return {"accounts": [], "contacts": [], "activities": []}
    accounts = list(search_accounts(user, q)[:SEARCH_LIMIT])
    contacts = list(
        Contact.objects.filter(account__in=visible_accounts(user))
        .filter(
            Q(first_name__icontains=q) | Q(last_name__icontains=q) | Q(emails__address__icontains=q)
        )
        .select_related("account")
        .prefetch_related("emails")
        .distinct()
        .order_by("last_name", "first_name", "id")[:SEARCH_LIMIT]
    )
    activities = _visible_activities(user).select_related("account")
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

        vector = SearchVector("subject", weight="A", config="english") + SearchVector(
            "body", weight="B", config="english"
        )
        query = SearchQuery(q, search_type="websearch", config="english")
        activities = (
            activities.annotate(rank=SearchRank(vector, query))
            .filter(rank__gt=0)
            .order_by("-rank", "-occurred_at", "-id")
        )
    else:
        activities = activities.filter(Q(body__icontains=q) | Q(subject__icontains=q)).order_by(
            "-occurred_at", "-id"
        )
    return {
        "accounts": accounts,
        "contacts": contacts,
        "activities": list(activities[:SEARCH_LIMIT]),
    }


def mention_suggestions(user: Any, account: Account, prefix: str, limit: int = 8) -> list[Any]:
    """People whose username or name starts with `prefix` and who can see `account`."""
    from crm.visibility import people_who_can_see

    prefix = prefix.strip().lstrip("@")[:150]
    people = people_who_can_see(account)
    if prefix:
        people = people.filter(
            Q(username__istartswith=prefix)
            | Q(first_name__istartswith=prefix)
            | Q(last_name__istartswith=prefix)
        )
    return list(people.order_by("username")[:limit])


@dataclass
class Overview:
    """The side panels of an account's 360 page."""

    open_requests: list[Activity]
    upcoming_meetings: list[Activity]
    open_tasks: list[Activity]
    followers: list[Any]


def account_overview(user: Any, account: Account, *, limit: int = 10) -> Overview:
    """Open requests, upcoming meetings, open tasks and followers of `account`."""
    from django.utils import timezone

    from crm.models import User
    from crm.visibility import people_who_can_see

    now = timezone.now()
    live = Activity.objects.filter(account=account, deleted_at__isnull=True).select_related(
        "author", "assignee"
    )
    requests = live.filter(kind=Activity.Kind.REQUEST).exclude(status="resolved")
    meetings = live.filter(kind=Activity.Kind.MEETING, starts_at__gte=now)
    tasks = live.filter(kind=Activity.Kind.TASK, done_at__isnull=True)
    follower_ids = Follow.objects.filter(account=account).values("user_id")
    grants = AccountTeamMember.objects.filter(account=account).values("user_id")
    followers = people_who_can_see(account).filter(
        Q(pk__in=follower_ids) | Q(pk=account.owner_id) | Q(pk__in=grants)
    )
    return Overview(
        open_requests=list(requests.order_by("due_at", "occurred_at")[:limit]),
        upcoming_meetings=list(meetings.order_by("starts_at")[:limit]),
        open_tasks=list(tasks.order_by("due_at", "occurred_at")[:limit]),
        followers=list(
            User.objects.filter(pk__in=followers.values("pk")).order_by("first_name", "username")
        ),
    )


def followed_thread_ids(user: Any) -> set[int]:
    """Threads `user` follows (not muted) on accounts they can see."""
    subscriptions = ThreadSubscription.objects.filter(
        user_id=user.pk, is_muted=False, thread__account__in=visible_accounts(user)
    )
    return set(subscriptions.values_list("thread_id", flat=True))


def muted_thread_ids(user: Any) -> set[int]:
    return set(
        ThreadSubscription.objects.filter(user_id=user.pk, is_muted=True).values_list(
            "thread_id", flat=True
        )
    )
