"""Each account's last customer-facing activity (`feed.AccountTouch`, read by "going cold")
stays equal to what its timeline says, whatever the actions do: log, backdate, reply, hide,
move, merge."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from feed.actions import (
    add_comment,
    delete_activity,
    log_call,
    log_email,
    log_meeting,
    merge_accounts,
    move_activity,
    post_activity,
)
from feed.models import AccountTouch, Activity
from tests.conftest import Cast, make_account


def _from_the_timelines() -> dict[int, dt.datetime]:
    """Written apart from feed.actions.touches: the newest live email, meeting or call."""
    latest: dict[int, dt.datetime] = {}
    for activity in Activity.objects.filter(deleted_at__isnull=True):
        if activity.kind in ("email", "meeting", "call"):
            seen = latest.get(activity.account_id)
            latest[activity.account_id] = (
                max(seen, activity.occurred_at) if seen else (activity.occurred_at)
            )
    return latest


def _kept() -> dict[int, dt.datetime]:
    return dict(AccountTouch.objects.values_list("account_id", "last_touch_at"))


def test_last_touch_follows_every_change_of_the_timelines(cast: Cast) -> None:
    now = timezone.now()
    other = make_account(cast.admin, cast.owner, "Other Co")
    assert _kept() == _from_the_timelines() == {}
    post_activity(author=cast.owner, account=cast.account, body="not customer-facing")
    assert _kept() == {}
    old_call = log_call(
        actor=cast.owner, account=cast.account, occurred_at=now - dt.timedelta(days=20)
    )
    assert _kept() == _from_the_timelines() == {cast.account.pk: old_call.occurred_at}
    email = log_email(account=cast.account, subject="Hi", body="Hello", details={"from": "x@y"})
    # A call logged later but held earlier does not move the touch back.
    log_call(actor=cast.owner, account=cast.account, occurred_at=now - dt.timedelta(days=5))
    assert _kept() == _from_the_timelines()
    assert _kept()[cast.account.pk] == email.occurred_at
    # A reply in a thread is history of the account like any other.
    meeting = log_meeting(
        actor=cast.owner,
        account=other,
        subject="Kick-off",
        starts_at=now - dt.timedelta(days=2),
    )
    add_comment(actor=cast.owner, parent=meeting, body="Notes to follow")
    assert _kept() == _from_the_timelines()
    # Hiding the latest falls back to the one before; hiding the only one forgets the account.
    delete_activity(actor=cast.admin, activity=email)
    assert _kept() == _from_the_timelines()
    delete_activity(actor=cast.owner, activity=meeting)
    assert other.pk not in _kept() and _kept() == _from_the_timelines()
    # A misrouted email moved to the right account moves its touch.
    misrouted = log_email(account=other, subject="Oops", body="Wrong place", details={})
    assert _kept()[other.pk] == misrouted.occurred_at
    move_activity(actor=cast.admin, activity=misrouted, to_account=cast.account)
    assert _kept() == _from_the_timelines() and other.pk not in _kept()
    # A merge brings the loser's history onto the survivor.
    log_call(actor=cast.owner, account=other)
    merge_accounts(actor=cast.admin, survivor=cast.account, loser=other)
    assert _kept() == _from_the_timelines() and other.pk not in _kept()


def test_going_cold_reads_the_kept_touches(cast: Cast) -> None:
    from dashboard.queries import cold_accounts, dashboard_scope

    now = timezone.now()
    quiet = make_account(cast.admin, cast.owner, "Quiet Co")
    log_call(actor=cast.owner, account=quiet, occurred_at=now - dt.timedelta(days=30))
    log_call(actor=cast.owner, account=cast.account, occurred_at=now - dt.timedelta(days=1))
    scope = dashboard_scope(cast.manager, {"cold_days": "14"})
    cold = cold_accounts(scope)
    assert [a.name for a in cold.rows] == ["Quiet Co"] and cold.count == 1
    # The latest call of Acme is hidden: it is cold too now, never touched, so first.
    latest = Activity.objects.get(account=cast.account, kind="call")
    delete_activity(actor=cast.owner, activity=latest)
    cold = cold_accounts(dashboard_scope(cast.manager, {"cold_days": "14"}))
    assert [a.name for a in cold.rows] == ["Acme Logistics", "Quiet Co"]
    assert cold.rows[0].last_touch is None  # type: ignore[attr-defined]


def test_a_batch_of_inbound_emails_moves_each_accounts_touch(cast: Cast) -> None:
    from feed.actions.mail import NewEmail, log_emails

    other = make_account(cast.admin, cast.owner, "Other Co")
    earlier = timezone.now() - dt.timedelta(days=3)
    log_emails(
        [
            NewEmail(account=cast.account, subject="a", body="a", occurred_at=earlier),
            NewEmail(account=cast.account, subject="b", body="b"),
            NewEmail(account=other, subject="c", body="c", occurred_at=earlier),
        ]
    )
    assert _kept() == _from_the_timelines() and set(_kept()) == {cast.account.pk, other.pk}


def test_a_batch_touches_all_its_accounts_in_one_statement(cast: Cast) -> None:
    """One sorted statement, however many accounts (one UPDATE per account, in the batch's own
    order, deadlocked concurrent drains); a backdated email leaves a later touch alone."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from feed.actions.mail import NewEmail, log_emails

    if connection.vendor != "postgresql":
        pytest.skip("one sorted statement is PostgreSQL's path; SQLite updates each account")

    accounts = [make_account(cast.admin, cast.owner, f"Co {n}") for n in range(6)]
    log_call(actor=cast.owner, account=accounts[0], body="just now")
    long_ago = timezone.now() - dt.timedelta(days=30)

    def touches(batch: list[NewEmail]) -> int:
        with CaptureQueriesContext(connection) as queries:
            log_emails(batch)
        return sum("feed_accounttouch" in q["sql"] for q in queries.captured_queries)

    few = touches([NewEmail(account=accounts[0], subject="old", body="o", occurred_at=long_ago)])
    many = touches(
        [NewEmail(account=a, subject="s", body="b") for a in reversed(accounts)]
        + [NewEmail(account=accounts[3], subject="old", body="o", occurred_at=long_ago)]
    )
    assert few == many == 1
    assert _kept() == _from_the_timelines()
    assert set(_kept()) == {a.pk for a in accounts}
