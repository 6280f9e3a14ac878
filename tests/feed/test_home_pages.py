"""Paging through the home feed: every wanted row exactly once, newest first, whichever way the page
is found (on PostgreSQL: per-follow index ranges, or a walk of the newest rows)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm import actions as crm_actions
from crm.models import Account
from crm.visibility import AccountNotFound
from feed import home_sql, queries
from feed.models import Activity, Follow, ThreadSubscription
from feed.queries import account_timeline, get_visible_account_timeline, home_feed
from tests.conftest import Cast, client_for, make_account

KINDS = ["post", "call", "email", "task"]


def _history(cast: Cast) -> tuple[list[int], dict[str, Account]]:
    """Accounts bob follows in every way there is, busy history on each (with ties in time), and
    the ids bob's home feed should list, newest first."""
    accounts = {
        "all": make_account(cast.admin, cast.owner, "All kinds"),
        "calls": make_account(cast.admin, cast.owner, "Only calls"),
        "thread": make_account(cast.admin, cast.owner, "One followed thread"),
        "other": make_account(cast.admin, cast.owner, "Not followed"),
        "hidden": cast.west_account,
    }
    Activity.objects.all().delete()  # account creation logs history; start from none
    Follow.objects.create(user=cast.teammate, account=accounts["all"])
    Follow.objects.create(user=cast.teammate, account=accounts["calls"], kinds=["call"])
    Follow.objects.create(user=cast.teammate, account=accounts["hidden"])  # not visible to bob
    start = timezone.now() - dt.timedelta(days=30)
    rows: list[Activity] = []
    for n in range(60):
        for name, account in accounts.items():
            rows.append(
                Activity(
                    account=account,
                    kind=KINDS[n % len(KINDS)],
                    author=cast.owner,
                    body=f"{name} {n}",
                    occurred_at=start + dt.timedelta(minutes=n // 3),  # three rows a minute
                )
            )
    Activity.objects.bulk_create(rows)
    by_body = {a.body: a for a in Activity.objects.all()}
    followed_root = by_body["thread 10"]
    muted_root = by_body["all 12"]
    for n, name in [(20 + i, ("thread", "all", "other")[i % 3]) for i in range(30)]:
        Activity.objects.create(
            account=followed_root.account,
            kind="comment",
            author=cast.teammate,
            parent=followed_root,
            body=f"reply {name} {n}",
            occurred_at=start + dt.timedelta(minutes=n),
        )
    for n in (30, 31):
        Activity.objects.create(
            account=muted_root.account,
            kind="comment",
            author=cast.owner,
            assignee=cast.teammate,
            parent=muted_root,
            body=f"muted reply {n}",
            occurred_at=start + dt.timedelta(minutes=n),
        )
    ThreadSubscription.objects.create(user=cast.teammate, thread=followed_root)
    ThreadSubscription.objects.create(user=cast.teammate, thread=muted_root, is_muted=True)
    Activity.objects.filter(body="all 40").update(deleted_at=timezone.now())

    def wanted(a: Activity) -> bool:
        if a.deleted_at is not None or muted_root.pk in (a.pk, a.parent_id):
            return False
        if followed_root.pk in (a.pk, a.parent_id):
            return True
        return a.account_id == accounts["all"].pk or (
            a.account_id == accounts["calls"].pk and a.kind == "call"
        )

    everything = sorted(Activity.objects.all(), key=lambda a: (a.occurred_at, a.pk), reverse=True)
    return [a.pk for a in everything if wanted(a)], accounts


def _all_pages(user: Any, size: int) -> list[int]:
    seen: list[int] = []
    before = None
    while True:
        page = home_feed(user, before=before, size=size)
        assert len(page.results) <= size
        seen += [a.pk for a in page.results]
        if page.next is None:
            return seen
        before = page.next


@pytest.mark.parametrize(
    ("walk_from_follows", "walk_window"),
    [
        (home_sql.WALK_FROM_FOLLOWS, home_sql.WALK_WINDOW),  # few follows: index range per follow
        (0, 10_000),  # the walk of the newest rows finds every page
        (0, 12),  # the walk finds too few; the page falls back to the index ranges
    ],
)
def test_home_pages_list_every_wanted_row_once_newest_first(
    cast: Cast, monkeypatch: pytest.MonkeyPatch, walk_from_follows: int, walk_window: int
) -> None:
    expected, _ = _history(cast)
    monkeypatch.setattr(home_sql, "WALK_FROM_FOLLOWS", walk_from_follows)
    monkeypatch.setattr(home_sql, "WALK_WINDOW", walk_window)
    assert len(expected) > 60
    for size in (7, 25):
        assert _all_pages(cast.teammate, size) == expected


def _pages_by_two_queries(user: Any, size: int) -> list[list[int]]:
    pages, before = [], None
    while True:
        queries._MANY_FOLLOWS.clear()
        with CaptureQueriesContext(connection) as captured:
            page = home_feed(user, before=before, size=size)
        assert len(captured) <= 2
        pages.append([a.pk for a in page.results])
        if page.next is None:
            return pages
        before = page.next


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-query walk: PostgreSQL")
def test_a_user_known_to_follow_many_accounts_gets_the_same_pages_in_one_query(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk that reads the follows itself (`home_sql.self_contained_walk_statement`) lists
    what the two queries list, for every kind of follow (explicit with and without kinds, owner,
    account team, threads, mutes, accounts out of sight) and every role."""
    _, accounts = _history(cast)
    granted = accounts["other"]
    crm_actions.grant_account_access(actor=cast.admin, account=granted, user=cast.outsider)
    Follow.objects.create(user=cast.owner, account=accounts["calls"], kinds=["email", "task"])
    for body in ("other 7", "all 5"):  # on an account erin was granted, and on one out of sight
        thread = Activity.objects.get(body=body)
        ThreadSubscription.objects.create(user=cast.outsider, thread=thread)
        Activity.objects.create(
            account=thread.account,
            kind="comment",
            author=cast.owner,
            parent=thread,
            body=f"reply to {body}",
            occurred_at=thread.occurred_at + dt.timedelta(seconds=1),
        )
    monkeypatch.setattr(home_sql, "WALK_FROM_FOLLOWS", 0)  # everyone follows "many"
    monkeypatch.setattr(home_sql, "WALK_WINDOW", 10_000)  # the walk finds every page
    people = [cast.owner, cast.teammate, cast.outsider, cast.support, cast.manager, cast.admin]
    for user in people:
        expected = _pages_by_two_queries(user, 7)
        pages, before = [], None
        while True:
            queries._MANY_FOLLOWS.add((connection.alias, user.pk))
            with CaptureQueriesContext(connection) as captured:
                page = home_feed(user, before=before, size=7)
            pages.append([a.pk for a in page.results])
            if page.next is None:
                break
            assert len(captured) == 1, user.username  # a full page: the walk alone
            before = page.next
        assert pages == expected, user.username
    assert any(len(p) == 7 for p in _pages_by_two_queries(cast.outsider, 7))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-query walk: PostgreSQL")
def test_a_walk_that_finds_too_few_falls_back_and_forgets_the_guess(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected, _ = _history(cast)
    monkeypatch.setattr(home_sql, "WALK_WINDOW", 12)
    queries._MANY_FOLLOWS.add((connection.alias, cast.teammate.pk))  # a stale guess: bob follows 3
    with CaptureQueriesContext(connection) as captured:
        page = home_feed(cast.teammate, size=25)
    assert [a.pk for a in page.results] == expected[:25]
    assert len(captured) == 3  # the walk, then what bob follows and the page
    assert (connection.alias, cast.teammate.pk) not in queries._MANY_FOLLOWS
    with CaptureQueriesContext(connection) as captured:
        home_feed(cast.teammate, before=page.next, size=25)
    assert len(captured) == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-query walk: PostgreSQL")
def test_the_api_home_page_of_a_user_known_to_follow_many_is_one_query(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    _history(cast)
    monkeypatch.setattr(home_sql, "WALK_FROM_FOLLOWS", 3)  # bob follows 3 accounts
    first = client_for(cast.teammate).get("/api/v1/feed/")
    assert (connection.alias, cast.teammate.pk) in queries._MANY_FOLLOWS
    with CaptureQueriesContext(connection) as captured:
        again = client_for(cast.teammate).get("/api/v1/feed/")
    page_queries = [q for q in captured.captured_queries if "feed_activity" in q["sql"]]
    assert len(page_queries) == 1
    assert again.content == first.content


def test_home_page_carries_authors_assignees_accounts_and_parents(cast: Cast) -> None:
    _history(cast)
    with CaptureQueriesContext(connection) as queries:
        page = home_feed(cast.teammate, size=200)
    assert len(queries) == 2  # what bob follows; the page with its people, accounts, parents
    with CaptureQueriesContext(connection) as queries:
        for activity in page.results:
            assert activity.author is not None and activity.author.display_name
            assert activity.account.name
            if activity.parent_id is not None:
                assert activity.parent is not None and activity.parent.body
            if activity.assignee_id is not None:
                assert activity.assignee is not None
                assert activity.assignee.username == "bob"
    assert len(queries) == 0


def test_home_page_json_is_the_activity_shape(cast: Cast) -> None:
    _history(cast)
    results = client_for(cast.teammate).get("/api/v1/feed/").json()["results"]
    people = {
        "alice": {"id": cast.owner.pk, "username": "alice", "display_name": "Alice Moreau"},
        "bob": {"id": cast.teammate.pk, "username": "bob", "display_name": "Bob"},
    }
    assert results[0]["body"] == "reply other 49"
    assert all(r["author"] == people[r["author"]["username"]] for r in results)
    assert {r["kind"] for r in results} <= {*KINDS, "comment"}
    assert all(isinstance(r["details"], dict) and isinstance(r["reactions"], dict) for r in results)


def test_a_user_who_follows_nothing_has_an_empty_home_in_one_query(cast: Cast) -> None:
    Activity.objects.create(
        account=cast.account, kind="post", author=cast.owner, body="x", occurred_at=timezone.now()
    )
    with CaptureQueriesContext(connection) as queries:
        page = home_feed(cast.teammate)
    assert page.results == [] and page.next is None
    assert len(queries) == 1


def test_timeline_pages_list_each_root_once_with_its_live_replies_oldest_first(cast: Cast) -> None:
    _, accounts = _history(cast)
    account = accounts["all"]
    reply = Activity.objects.filter(parent__isnull=False, account=account).first()
    assert reply is not None
    root = reply.parent
    Activity.objects.create(
        account=account,
        kind="comment",
        author=cast.owner,
        parent=root,
        body="deleted reply",
        occurred_at=reply.occurred_at,
        deleted_at=timezone.now(),
    )
    live = Activity.objects.filter(account=account, deleted_at__isnull=True)
    roots = sorted(live.filter(parent__isnull=True), key=lambda a: (a.occurred_at, a.pk))
    expected = [a.pk for a in reversed(roots)]
    seen: list[int] = []
    before = None
    while True:
        page = account_timeline(cast.teammate, account, before=before, size=9)
        for thread in page.results:
            seen.append(thread.pk)
            replies = list(live.filter(parent=thread).order_by("occurred_at", "id"))
            assert [r.pk for r in thread.replies.all()] == [r.pk for r in replies]
        if page.next is None:
            break
        before = page.next
    assert seen == expected
    assert root is not None and root.pk in seen


def test_timeline_of_an_account_one_may_not_see_is_a_404_before_any_400(cast: Cast) -> None:
    url = f"/api/v1/accounts/{cast.account.pk}/activities/"
    outsider, owner = client_for(cast.outsider), client_for(cast.owner)
    for query in ("", "?before=garbage", "?kind=gossip", "?kind=call&q=x&author=alice"):
        assert outsider.get(url + query).status_code == 404, query
    assert owner.get(url + "?before=garbage").status_code == 400
    assert owner.get(url + "?kind=gossip").status_code == 400
    Activity.objects.filter(account=cast.account).delete()
    with CaptureQueriesContext(connection) as queries:
        response = owner.get(url)
    assert response.json() == {"results": [], "next": None}
    assert len(queries) == 1  # nothing on the page: no people to load


def test_an_inactive_user_sees_no_timeline_and_an_empty_home(cast: Cast) -> None:
    _history(cast)
    cast.teammate.is_active = False
    cast.teammate.save(update_fields=["is_active"])
    assert home_feed(cast.teammate).results == []
    with pytest.raises(AccountNotFound):
        get_visible_account_timeline(cast.teammate, cast.account.pk)


def test_visibility_follows_a_change_of_team_at_once(cast: Cast) -> None:
    expected, accounts = _history(cast)
    assert [a.pk for a in home_feed(cast.teammate, size=500).results] == expected
    assert get_visible_account_timeline(cast.teammate, accounts["all"].pk).results
    cast.teammate.team = cast.west
    cast.teammate.save(update_fields=["team"])
    west_rows = [a.pk for a in home_feed(cast.teammate, size=500).results]
    assert west_rows and {a.account_id for a in home_feed(cast.teammate, size=500).results} == {
        cast.west_account.pk
    }
    with pytest.raises(AccountNotFound):
        get_visible_account_timeline(cast.teammate, accounts["all"].pk)


@pytest.mark.parametrize(
    "filters",
    [
        {"kind": "call"},
        {"author": "bob"},
        {"kind": "post", "author": "alice"},
        {"q": "ALL 1"},  # a case-insensitive text match: "all 1", "all 10", ...
        {"q": "all 5", "kind": "task"},
    ],
)
def test_timeline_filters_hold_over_every_page(cast: Cast, filters: dict[str, str]) -> None:
    _, accounts = _history(cast)
    account = accounts["all"]
    Activity.objects.filter(account=account, body__endswith="7").update(author=cast.teammate)
    roots = Activity.objects.filter(account=account, deleted_at__isnull=True, parent__isnull=True)
    if "kind" in filters:
        roots = roots.filter(kind=filters["kind"])
    if "author" in filters:
        roots = roots.filter(author__username=filters["author"])
    if "q" in filters:
        roots = roots.filter(body__icontains=filters["q"])
    expected = [a.pk for a in roots.order_by("-occurred_at", "-id")]
    assert expected
    seen: list[int] = []
    before = None
    while True:
        page = get_visible_account_timeline(
            cast.owner, account.pk, before=before, size=4, **filters
        )
        seen += [a.pk for a in page.results]
        if page.next is None:
            break
        before = page.next
    assert seen == expected
