"""The page statements as the API runs them: records in place of models (the JSON must not
change), the visibility policy applied inside the home page's statement (whichever way the page is
found), and prepared statements on PostgreSQL (one per statement shape, whatever the values)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from crm import actions as crm_actions
from feed import home_sql
from feed.actions import (
    add_comment,
    create_task,
    delete_activity,
    edit_activity,
    follow_account,
    log_call,
    post_activity,
    set_reaction,
    set_thread_subscription,
)
from feed.queries import account_timeline, home_feed
from feed.serializers import ThreadSerializer
from tests.conftest import Cast, client_for, make_account

STRATEGIES = pytest.mark.parametrize(
    ("walk_from_follows", "walk_window"),
    [
        (home_sql.WALK_FROM_FOLLOWS, home_sql.WALK_WINDOW),  # an index range per follow
        (0, 10_000),  # the walk of the newest rows
        (0, 3),  # the walk finds too few and falls back to the index ranges
    ],
)


def test_timeline_json_is_byte_for_byte_the_thread_serializers(cast: Cast) -> None:
    """The API writes a timeline as PostgreSQL writes it (feed.sqlrows.ActivityJSON); the
    body must be what ThreadSerializer makes of the models and their replies, every field."""
    now = timezone.now()
    post = post_activity(author=cast.owner, account=cast.account, body="Ünïcode \u2028 <b>")
    set_reaction(actor=cast.teammate, activity=post, kind="like", is_on=True)
    edit_activity(actor=cast.owner, activity=post, body='edited "quoted" text', subject=None)
    add_comment(actor=cast.teammate, parent=post, body="a reply")
    gone = add_comment(actor=cast.teammate, parent=post, body="a deleted reply")
    delete_activity(actor=cast.teammate, activity=gone)
    add_comment(actor=cast.owner, parent=post, body="a later reply")
    create_task(
        actor=cast.owner,
        account=cast.account,
        subject="call back",
        assignee=cast.teammate,
        due_at=now - dt.timedelta(days=1),
    )
    log_call(
        actor=cast.owner, account=cast.account, body="rang", duration_seconds=90, outcome="busy"
    )

    response = client_for(cast.owner).get(f"/api/v1/accounts/{cast.account.pk}/activities/")
    assert response.status_code == 200
    threads = account_timeline(cast.owner, cast.account).results
    assert len(threads) >= 3 and any(t.replies.all() for t in threads)
    expected = {"results": ThreadSerializer(threads, many=True).data, "next": None}
    assert response.content == JSONRenderer().render(expected)
    assert b"a deleted reply" not in response.content


@STRATEGIES
def test_a_followed_account_leaves_the_home_feed_when_it_is_no_longer_visible(
    cast: Cast, monkeypatch: pytest.MonkeyPatch, walk_from_follows: int, walk_window: int
) -> None:
    """Follows are kept when access changes; the page asks the policy of the rows it reaches."""
    monkeypatch.setattr(home_sql, "WALK_FROM_FOLLOWS", walk_from_follows)
    monkeypatch.setattr(home_sql, "WALK_WINDOW", walk_window)
    granted = make_account(cast.admin, cast.outsider, "Granted west account")
    crm_actions.grant_account_access(actor=cast.admin, account=granted, user=cast.teammate)
    other = make_account(cast.admin, cast.owner, "Another east account")
    follow_account(user=cast.teammate, account=cast.account)
    bob = client_for(cast.teammate)
    bob.put(f"/api/v1/accounts/{granted.pk}/follow/", {"kinds": ["call"]}, format="json")
    for n in range(4):
        post_activity(author=cast.owner, account=cast.account, body=f"east {n}")
        log_call(actor=cast.outsider, account=granted, body=f"call {n}")
        post_activity(author=cast.outsider, account=granted, body=f"unwanted post {n}")
        post_activity(author=cast.owner, account=other, body=f"unfollowed {n}")
    thread = post_activity(author=cast.owner, account=other, body="followed thread")
    set_thread_subscription(user=cast.teammate, thread=thread, is_muted=False)
    add_comment(actor=cast.owner, parent=thread, body="reply in the thread")

    def bodies() -> set[str]:
        found = {a.body for a in home_feed(cast.teammate, size=5).results}
        found |= {a.body for a in home_feed(cast.teammate, size=50).results}
        return found | {row["body"] for row in bob.get("/api/v1/feed/").json()["results"]}

    assert {"east 3", "call 3", "reply in the thread"} <= bodies()
    assert not {"unwanted post 3", "unfollowed 3"} & bodies()

    crm_actions.revoke_account_access(actor=cast.admin, account=granted, user=cast.teammate)
    assert not {"call 0", "call 3"} & bodies()
    assert {"east 3", "reply in the thread"} <= bodies()

    cast.teammate.team = cast.west
    cast.teammate.save(update_fields=["team"])
    assert {a.body for a in home_feed(cast.teammate, size=50).results} == {
        f"{kind} {n}" for kind in ("call",) for n in range(4)
    }  # the granted account is the west team's: visible again, through the team


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_page_statements_are_prepared_once_for_every_user_and_page(cast: Cast) -> None:
    """The values are parameters: two users, two accounts and two pages share one statement."""
    second = make_account(cast.admin, cast.owner, "Second east account")
    for n in range(30):
        post_activity(author=cast.owner, account=cast.account, body=f"east {n}")
        post_activity(author=cast.teammate, account=second, body=f"second {n}")

    def timeline_statements() -> dict[str, int]:
        """Name -> executions of the timeline statements prepared on this connection (earlier
        tests on it may have prepared the same ones)."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, generic_plans + custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE 'WITH page AS (SELECT r.id FROM feed_activity r%%'"
            )
            return dict(cursor.fetchall())

    before = timeline_statements()
    for user, account in ((cast.owner, cast.account), (cast.teammate, second)):
        client = client_for(user)
        first = client.get(f"/api/v1/accounts/{account.pk}/activities/").json()
        assert first["next"] and len(first["results"]) == 25
        after = client.get(f"/api/v1/accounts/{account.pk}/activities/?before={first['next']}")
        assert len(after.json()["results"]) == 5
    after = timeline_statements()
    assert sum(after.values()) - sum(before.values()) == 4
    assert len(set(after) - set(before)) <= 2  # page 1 and the pages after it: one each


def test_logged_page_statements_carry_their_values(cast: Cast) -> None:
    """Query logs (DEBUG, CaptureQueriesContext) show a prepared statement as Django shows any
    other: the SQL with its values in place."""
    from django.test.utils import CaptureQueriesContext

    post_activity(author=cast.owner, account=cast.account, body="logged")
    with CaptureQueriesContext(connection) as queries:
        response = client_for(cast.owner).get(f"/api/v1/accounts/{cast.account.pk}/activities/")
    assert response.status_code == 200
    page = [q["sql"] for q in queries.captured_queries if "FROM feed_activity r" in q["sql"]]
    assert len(page) == 1
    assert "%s" not in page[0] and f"r.account_id = {cast.account.pk} " in page[0]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_generic_plans_stay_set_for_the_connection_across_rollbacks() -> None:
    """The plan-cache mode is a session setting, set in autocommit only: set inside a transaction,
    a rollback would undo it behind the back of the code that set it."""
    from django.db import transaction

    from crm.sqlrows import prepared_cursor

    def mode() -> str:
        with prepared_cursor() as cursor:
            cursor.execute("SELECT current_setting('plan_cache_mode')")
            return str(cursor.fetchone()[0])

    assert mode() == "force_generic_plan"
    with transaction.atomic():
        assert mode() == "force_generic_plan"
        transaction.set_rollback(True)
    assert mode() == "force_generic_plan"


def test_page_json_written_by_the_database_matches_the_serializers_on_edge_cases(
    cast: Cast,
) -> None:
    """PostgreSQL writes each row's JSON (feed.sqlrows.ActivityJSONColumns): names stripped as
    str.strip() strips (Unicode spaces included), times with and without microseconds, internal
    notes, nested JSON and the line and paragraph separators escaped as DRF escapes them."""
    from feed.actions import raise_request
    from feed.models import Activity
    from feed.serializers import ActivitySerializer

    cast.owner.first_name, cast.owner.last_name = "\u3000Ada\u2003", "\t"
    cast.owner.save(update_fields=["first_name", "last_name"])
    cast.teammate.first_name, cast.teammate.last_name = "", "\u00a0"
    cast.teammate.save(update_fields=["first_name", "last_name"])
    request = raise_request(actor=cast.owner, account=cast.account, subject="a\u2029b\x01\x7f")
    add_comment(actor=cast.teammate, parent=request, body='note\n"x"\\', is_internal=True)
    whole = post_activity(author=cast.teammate, account=cast.account, body="whole second")
    Activity.objects.filter(pk=whole.pk).update(
        occurred_at=timezone.now().replace(microsecond=0) + dt.timedelta(seconds=1),
        details={"b": [1, 2.5, {"é": None}], "a": "ü"},
    )
    follow_account(user=cast.teammate, account=cast.account)

    timeline = client_for(cast.owner).get(f"/api/v1/accounts/{cast.account.pk}/activities/")
    threads = account_timeline(cast.owner, cast.account).results
    expected = {"results": ThreadSerializer(threads, many=True).data, "next": None}
    assert timeline.content == JSONRenderer().render(expected)
    assert "Ada" in {t["author"]["display_name"] for t in timeline.json()["results"]}
    assert timeline.json()["results"][1]["replies"][0]["internal"] is True

    feed = client_for(cast.teammate).get("/api/v1/feed/")
    ids = [row["id"] for row in feed.json()["results"]]
    models = Activity.objects.select_related("author", "assignee").in_bulk(ids)
    rows = [ActivitySerializer(models[pk]).data for pk in ids]
    assert feed.content == JSONRenderer().render({"results": rows, "next": None})
    assert "." not in feed.json()["results"][0]["occurred_at"]  # microsecond 0: none written


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_a_prepared_cursor_in_use_is_not_shared_by_a_nested_one(cast: Cast) -> None:
    """The connection's prepared cursor is kept between pages, and taken while in use."""
    from crm.sqlrows import prepared_cursor

    with prepared_cursor() as outer:
        outer.execute("SELECT generate_series(1, %s)", [3])
        with prepared_cursor() as inner:
            inner.execute("SELECT %s::text", ["inner"])
            assert inner.fetchall() == [("inner",)]
        assert outer.fetchall() == [(1,), (2,), (3,)]
    with prepared_cursor() as again:
        assert again.cursor is outer.cursor  # kept for the next page
