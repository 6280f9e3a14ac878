"""Reads of the feed: one function per question, keyset pagination, a fixed number of queries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from crm.models import Account, AccountTeamMember
from crm.sqlrows import prepared_cursor
from crm.visibility import AccountNotFound, can_see_account, visible_accounts, visible_accounts_sql
from feed.cursors import decode_cursor, encode_cursor
from feed.home_sql import (
    HomeWanted,
    Statement,
    home_page_statement,
    self_contained_walk_statement,
)
from feed.models import Activity, Follow, ThreadSubscription
from feed.sqlrows import (
    ActivityColumns,
    ActivityJSON,
    ActivityJSONColumns,
    set_prefetched,
)

PAGE_SIZE = 25

# The select lists of the API's pages (fixed text: made once). The timeline's statement takes
# positional parameters, the home page's named ones.
_TIMELINE_JSON = ActivityJSONColumns()
_HOME_JSON = ActivityJSONColumns(now="%(now)s")


@dataclass
class Page:
    results: list[Activity]
    next: str | None


def _replies() -> Prefetch:
    replies = Activity.objects.filter(deleted_at__isnull=True).select_related("author", "assignee")
    return Prefetch("replies", queryset=replies.order_by("occurred_at", "id"))


def _visible_activities(user: Any) -> QuerySet[Activity]:
    return Activity.objects.filter(
        deleted_at__isnull=True, account__in=visible_accounts(user)
    ).select_related("author", "assignee")


def _page(queryset: QuerySet[Activity], before: str | None, size: int) -> Page:
    if before:
        queryset = _before(queryset, before)
    return _cut(list(queryset.order_by("-occurred_at", "-id")[: size + 1]), size)


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
    One query: the page of roots with their replies and people.
    """
    filters = _RootFilters(before=before, kind=kind, author=author, q=q, size=size)
    return _timeline(account.pk, None, filters, ActivityColumns(connection))


def get_visible_account_timeline(
    user: Any,
    account_id: int | str,
    *,
    before: str | None = None,
    kind: str | None = None,
    author: str | None = None,
    q: str | None = None,
    size: int = PAGE_SIZE,
) -> Page:
    """`account_timeline` of the account with this id if `user` may see it; raises AccountNotFound
    otherwise (before ValidationError for a bad cursor). The visibility check is part of the
    page's statement: one query in all, where `get_visible_account` and then `account_timeline`
    take two."""
    filters = _RootFilters(before=before, kind=kind, author=author, q=q, size=size)
    return _visible_timeline(user, account_id, filters, ActivityColumns(connection))


def get_visible_account_timeline_records(
    user: Any,
    account_id: int | str,
    *,
    before: str | None = None,
    kind: str | None = None,
    author: str | None = None,
    q: str | None = None,
    size: int = PAGE_SIZE,
) -> RecordPage:
    """`get_visible_account_timeline` as the API's JSON needs it: on PostgreSQL each thread is an
    `ActivityJSON` (its JSON text, written by PostgreSQL) with its `replies` (the same), elsewhere
    an `Activity` with its replies prefetched. The same one query and the same errors."""
    filters = _RootFilters(before=before, kind=kind, author=author, q=q, size=size)
    columns: ActivityColumns | ActivityJSONColumns = (
        _TIMELINE_JSON if connection.vendor == "postgresql" else ActivityColumns(connection)
    )
    page = _visible_timeline(user, account_id, filters, columns)
    return RecordPage(results=page.results, next=page.next)


def _visible_timeline(
    user: Any,
    account_id: int | str,
    filters: _RootFilters,
    columns: ActivityColumns | ActivityJSONColumns,
) -> Page:
    try:
        pk = int(account_id)
    except (TypeError, ValueError):
        raise AccountNotFound() from None
    compiled = visible_accounts_sql(user)
    if compiled is None:
        raise AccountNotFound()
    try:
        return _timeline(pk, compiled, filters, columns)
    except ValidationError:
        if not can_see_account(user, pk):
            raise AccountNotFound() from None
        raise


@dataclass
class _RootFilters:
    before: str | None
    kind: str | None
    author: str | None
    q: str | None
    size: int


def _timeline(
    account_id: int,
    visible: tuple[str, tuple[Any, ...]] | None,
    filters: _RootFilters,
    columns: ActivityColumns | ActivityJSONColumns,
) -> Page:
    """The page of rows `columns` loads (Activity, or ActivityJSON with its `replies`); with
    `visible` (the SQL of the accounts the user may see), AccountNotFound unless the account is
    among them."""
    roots_sql, roots_params = _roots(account_id, filters)
    # Only column names from the models and the ORM's own SQL go into the text; every value is a
    # parameter. One join with OR plans in a third of the time of a UNION of roots and replies.
    rows = (
        "page JOIN feed_activity a"
        f" ON a.id = page.id OR (a.parent_id = page.id AND a.deleted_at IS NULL) {columns.joins}"
    )
    params = list(roots_params)
    if isinstance(columns, ActivityJSONColumns):
        params += columns.params(timezone.now())  # the select list's, after the roots'
    if visible is None:
        sql = f"WITH page AS ({roots_sql}) SELECT {columns.select} FROM {rows}"  # noqa: S608
    else:
        # No row: not visible. One row of NULLs: visible, with nothing on the page.
        visible_sql, visible_params = visible
        sql = (
            f"WITH page AS ({roots_sql}) SELECT {columns.select} "  # noqa: S608
            f"FROM ({visible_sql}) v LEFT JOIN ({rows}) ON TRUE WHERE v.pk = %s"
        )
        params += [*visible_params, account_id]
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    if visible is not None and not found:
        raise AccountNotFound()
    activities: list[Any] = [columns.load(row) for row in found if row[0] is not None]
    threads = sorted((a for a in activities if a.parent_id is None), key=_position, reverse=True)
    replies: dict[int, list[Any]] = {thread.pk: [] for thread in threads}
    for reply in sorted((a for a in activities if a.parent_id is not None), key=_position):
        replies[reply.parent_id].append(reply)
    for thread in threads:
        if isinstance(thread, ActivityJSON):
            thread.replies = replies[thread.pk]
        else:
            set_prefetched(thread, "replies", Activity, replies[thread.pk])
    return _cut(threads, filters.size)


def _roots(account_id: int, filters: _RootFilters) -> tuple[str, list[Any]]:
    """SELECT id of the page's thread roots, newest first, one more than the page.

    Written by hand (building and compiling the queryset was a sixth of the page's Python time),
    except for a text search, whose case-insensitive match each database spells its own way.
    """
    if filters.q:
        roots = Activity.objects.filter(
            account_id=account_id, deleted_at__isnull=True, parent__isnull=True
        )
        if filters.kind:
            roots = roots.filter(kind=filters.kind)
        if filters.author:
            roots = roots.filter(author__username=filters.author)
        roots = roots.filter(Q(body__icontains=filters.q) | Q(subject__icontains=filters.q))
        if filters.before:
            roots = _before(roots, filters.before)
        page = roots.order_by("-occurred_at", "-id").values("id")[: filters.size + 1]
        compiled, compiled_params = page.query.sql_with_params()
        return compiled, list(compiled_params)
    where = ["r.account_id = %s", "r.deleted_at IS NULL", "r.parent_id IS NULL"]
    params: list[Any] = [account_id]
    if filters.kind:
        where.append("r.kind = %s")
        params.append(filters.kind)
    if filters.author:
        where.append("r.author_id IN (SELECT id FROM crm_user WHERE username = %s)")
        params.append(filters.author)
    if filters.before:
        occurred_at, pk = decode_cursor(filters.before)
        at = connection.ops.adapt_datetimefield_value(occurred_at)
        # The plain bound first, as in `_before`: the index seeks to it.
        where.append(
            "r.occurred_at <= %s AND (r.occurred_at < %s OR (r.occurred_at = %s AND r.id < %s))"
        )
        params += [at, at, at, pk]
    params.append(filters.size + 1)
    sql = (
        f"SELECT r.id FROM feed_activity r WHERE {' AND '.join(where)}"  # noqa: S608 -- fixed text; values are parameters
        " ORDER BY r.occurred_at DESC, r.id DESC LIMIT %s"
    )
    return sql, params


def _position(activity: Activity | ActivityJSON) -> tuple[Any, int]:
    """Where a row sits in a timeline: the order of the keyset cursors."""
    if isinstance(activity, ActivityJSON):
        return (activity.occurred_us, activity.pk)
    return (activity.occurred_at, activity.pk)


def _cut(rows: list[Any], size: int) -> Page:
    """The first `size` of `size + 1` rows, and the cursor of the next page if there is one."""
    more = len(rows) > size
    rows = rows[:size]
    cursor = encode_cursor(rows[-1].occurred_at, rows[-1].pk) if more and rows else None
    return Page(results=rows, next=cursor)


def _before(queryset: QuerySet[Activity], before: str) -> QuerySet[Activity]:
    """Rows after the cursor in (-occurred_at, -id) order. The plain bound first: it is what lets
    the (…, occurred_at, id) indexes seek to the cursor instead of filtering every newer row."""
    occurred_at, pk = decode_cursor(before)
    return queryset.filter(occurred_at__lte=occurred_at).filter(
        Q(occurred_at__lt=occurred_at) | Q(occurred_at=occurred_at, pk__lt=pk)
    )


# Followed accounts as `_followed` defines them (explicit follows, owned, account-team), each with
# its Follow row's kinds if it has one; and the user's thread choices. Whether the user may see a
# followed account is left to the page's statement (`home_page_statement`), which asks the policy
# only of the accounts whose rows it reaches: for a user following 500 accounts, probing each here
# was 1.1 ms of the 1.3 ms this query took, where the page then needs a few dozen of them. A
# followed thread is kept only if the user may see its account (muted ones whatever the account):
# the policy's own SQL (`visible_accounts`) as a scalar subquery on one account, which PostgreSQL
# answers with a probe of the primary key per thread.
_SOURCES_SQL = """
SELECT 'follow', account_id, CAST(NULL AS bigint), NULLIF(kinds, '[]')
FROM feed_follow WHERE user_id = %s
UNION ALL SELECT 'quiet', id, NULL, NULL FROM crm_account WHERE owner_id = %s
UNION ALL SELECT 'quiet', account_id, NULL, NULL FROM crm_accountteammember WHERE user_id = %s
UNION ALL
SELECT CASE WHEN s.is_muted THEN 'muted' ELSE 'thread' END, s.thread_id, t.account_id, NULL
FROM feed_threadsubscription s JOIN feed_activity t ON t.id = s.thread_id
WHERE s.user_id = %s
    AND (s.is_muted OR (SELECT v.pk FROM ({visible}) v WHERE v.pk = t.account_id) IS NOT NULL)
"""


def _home_sources(user: Any) -> HomeWanted:
    """The followed accounts (with kinds; visible or not) and thread choices of `user`, in one
    query; `visible` holds the policy's SQL, which the page's statement applies to the accounts.

    Follow rows and quiet follows (owned, account team) come back as they are and are merged
    here: merging them in SQL (UNION, then a join back to the Follow rows for their kinds) was
    half of this query's time for a user following 500 accounts."""
    sources = HomeWanted(every_kind=[], some_kinds={}, threads=[], thread_accounts=[], muted=[])
    if not getattr(user, "is_authenticated", False):
        return sources
    compiled = visible_accounts_sql(user)
    if compiled is None:
        return sources
    visible, visible_params = compiled
    sources.visible = compiled
    sql = _SOURCES_SQL.format(visible=visible)
    params = [user.pk] * 4 + list(visible_params)
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    followed: dict[int, Any] = {}  # account -> its Follow row's kinds (None: every kind)
    quiet: list[int] = []
    for what, pk, account_id, kinds in rows:
        if what == "follow":
            followed[pk] = kinds
        elif what == "quiet":
            quiet.append(pk)
        elif what == "muted":
            sources.muted.append(pk)
        else:
            sources.threads.append(pk)
            sources.thread_accounts.append(account_id)
    for pk in quiet:  # owned or on the account team, without a Follow row: every kind
        followed.setdefault(pk, None)
    for pk, kinds in followed.items():
        if kinds is None:  # no Follow row, or no kinds chosen
            sources.every_kind.append(pk)
        elif chosen := (json.loads(kinds) if isinstance(kinds, str) else kinds):
            sources.some_kinds[pk] = chosen
        else:
            sources.every_kind.append(pk)
    _remember_follows(user, sources)
    return sources


# Users whose last home page found them following many accounts (`HomeWanted.walks_first`): their
# next pages try `self_contained_walk_statement` first, one query where `_home_sources` and the
# page take two (for the user following 500 accounts, sending their follows out and back in was
# ~0.3 ms of a ~1 ms page: docs/benchmarks-feed.md). It is a guess about speed, never about
# rows: a page that statement cannot answer falls back to the two queries, which renew the guess.
# Per process and bounded (losing it costs a query).
_MANY_FOLLOWS: set[tuple[str, int]] = set()
_MANY_FOLLOWS_KEPT = 10_000


def _remember_follows(user: Any, sources: HomeWanted) -> None:
    key = (connection.alias, user.pk)
    if not sources.walks_first:
        _MANY_FOLLOWS.discard(key)
        return
    if len(_MANY_FOLLOWS) >= _MANY_FOLLOWS_KEPT:
        _MANY_FOLLOWS.clear()
    _MANY_FOLLOWS.add(key)


def _walked_home_page(
    user: Any, before: str | None, size: int, columns: ActivityColumns | ActivityJSONColumns
) -> Page | None:
    """The page from `self_contained_walk_statement` when `user` is known to follow many
    accounts and the walk finds it; None when the caller must find it the usual way. Raises
    ValidationError for a bad cursor."""
    key = (connection.alias, getattr(user, "pk", None))
    if key not in _MANY_FOLLOWS:
        return None
    visible = visible_accounts_sql(user)
    if visible is None:
        return None
    at, pk = decode_cursor(before) if before else (None, None)
    statement = self_contained_walk_statement(user.pk, visible, at=at, pk=pk, n=size + 1)
    activities = _home_rows(statement, columns)
    if len(activities) <= size:  # the window did not hold the page
        _MANY_FOLLOWS.discard(key)
        return None
    return _cut(activities, size)


def home_feed(
    user: Any,
    *,
    before: str | None = None,
    size: int = PAGE_SIZE,
    with_account_and_parent: bool = True,
) -> Page:
    """Everything on the accounts and threads `user` follows, newest first, replies included.

    Per-follow preferences narrow an account to the kinds chosen; a muted thread is left out
    whatever follows it. Two queries a page: what the user follows, and the page with its people;
    on PostgreSQL, one for a user known to follow many accounts (`_walked_home_page`; three on a
    page where that guess fails). Each row's account and parent are loaded with it unless
    `with_account_and_parent` is False. Raises ValidationError for a bad cursor.
    """
    if connection.vendor != "postgresql":
        sources = _home_sources(user)
        if sources.is_empty:
            return Page(results=[], next=None)
        return _home_page_portable(user, sources, before, size, with_account_and_parent)
    columns = ActivityColumns(connection, with_context=with_account_and_parent)
    walked = _walked_home_page(user, before, size, columns)
    if walked is not None:
        return walked
    sources = _home_sources(user)
    if sources.is_empty:
        return Page(results=[], next=None)
    return _home_page_postgresql(sources, before, size, columns)


@dataclass
class RecordPage:
    results: list[ActivityJSON] | list[Activity]
    next: str | None


def home_feed_records(user: Any, *, before: str | None = None, size: int = PAGE_SIZE) -> RecordPage:
    """`home_feed` as the API's JSON needs it: on PostgreSQL each row is an `ActivityJSON` (its
    JSON text, author and assignee included, written by PostgreSQL; no account or parent),
    elsewhere an `Activity`. The same queries as `home_feed`; raises ValidationError for a bad
    cursor."""
    if connection.vendor != "postgresql":
        page = home_feed(user, before=before, size=size, with_account_and_parent=False)
        return RecordPage(results=page.results, next=page.next)
    found = _walked_home_page(user, before, size, _HOME_JSON)
    if found is not None:
        return RecordPage(results=found.results, next=found.next)
    sources = _home_sources(user)
    if sources.is_empty:
        return RecordPage(results=[], next=None)
    found = _home_page_postgresql(sources, before, size, _HOME_JSON)
    return RecordPage(results=found.results, next=found.next)


def _home_page_portable(
    user: Any, sources: HomeWanted, before: str | None, size: int, with_account_and_parent: bool
) -> Page:
    wanted = Q(account_id__in=sources.every_kind) if sources.every_kind else Q(pk__in=[])
    for account_id, kinds in sources.some_kinds.items():
        wanted |= Q(account_id=account_id, kind__in=kinds)
    # The followed accounts the user may see (the sources hold every followed account).
    wanted &= Q(account_id__in=visible_accounts(user).values("pk"))
    if sources.threads:
        in_threads = Q(pk__in=sources.threads) | Q(parent_id__in=sources.threads)
        wanted |= in_threads & Q(account_id__in=sources.thread_accounts)
    related = ["author", "assignee"]
    if with_account_and_parent:
        related += ["account", "parent"]
    queryset = Activity.objects.filter(wanted, deleted_at__isnull=True).select_related(*related)
    if sources.muted:
        queryset = queryset.exclude(Q(pk__in=sources.muted) | Q(parent_id__in=sources.muted))
    return _page(queryset, before, size)


def _home_page_postgresql(
    sources: HomeWanted,
    before: str | None,
    size: int,
    columns: ActivityColumns | ActivityJSONColumns,
) -> Any:
    """The page of rows `columns` loads (Activity or ActivityJSON), as a Page."""
    at, pk = decode_cursor(before) if before else (None, None)
    statement = home_page_statement(sources, at=at, pk=pk, n=size + 1)
    return _cut(_home_rows(statement, columns), size)


def _home_rows(statement: Statement, columns: ActivityColumns | ActivityJSONColumns) -> list[Any]:
    """The rows `columns` loads of the ids `statement` selects, newest first."""
    if isinstance(columns, ActivityJSONColumns):
        (now,) = columns.params(timezone.now())
        statement.params["now"] = now
    sql = (
        f"WITH page AS ({statement.sql}) SELECT {columns.select} FROM page "  # noqa: S608 -- fixed text; values are parameters
        f"JOIN feed_activity a ON a.id = page.id {columns.joins}"
    )
    with prepared_cursor() as cursor:
        cursor.execute(sql, statement.params)
        activities = [columns.load(row) for row in cursor.fetchall()]
    activities.sort(key=_position, reverse=True)
    return activities


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


def account_followers(account_id: int) -> dict[int, frozenset[str]]:
    """Who follows the account — explicitly, or quietly as its owner or an account-team member
    (the reverse of `_followed`) — with the kinds each wants (empty: all). Visibility is the
    caller's to check."""
    return accounts_followers({account_id})[account_id]


def accounts_followers(account_ids: set[int]) -> dict[int, dict[int, frozenset[str]]]:
    """`account_followers` of many accounts in three queries (the notifications of a batch of
    inbound email): account id -> follower -> kinds."""
    explicit: dict[int, dict[int, list[str]]] = {pk: {} for pk in account_ids}
    quiet: dict[int, set[int]] = {pk: set() for pk in account_ids}
    rows = Follow.objects.filter(account_id__in=account_ids)
    for account_id, user_id, kinds in rows.values_list("account_id", "user_id", "kinds"):
        explicit[account_id][user_id] = kinds
    members = AccountTeamMember.objects.filter(account_id__in=account_ids)
    for account_id, user_id in members.values_list("account_id", "user_id"):
        quiet[account_id].add(user_id)
    owners = Account.objects.filter(pk__in=account_ids, owner_id__isnull=False)
    for account_id, owner_id in owners.values_list("pk", "owner_id"):
        quiet[account_id].add(owner_id)
    return {
        pk: {
            user: frozenset(explicit[pk].get(user) or ()) for user in set(explicit[pk]) | quiet[pk]
        }
        for pk in account_ids
    }


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
