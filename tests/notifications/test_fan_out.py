"""From actions in the feed to notifications, through the same code the worker runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from crm import actions as crm_actions
from feed import actions as feed
from feed.models import Activity
from notifications import actions
from notifications.models import Happening, Notification
from realtime.models import Event
from tests.conftest import Cast, work_happenings


def told(user: object) -> list[tuple[str, int]]:
    return list(
        Notification.objects.filter(recipient=user)
        .order_by("id")
        .values_list("kind", "activity_id")
    )


def test_mention_notifies_the_person_named(cast: Cast) -> None:
    post = feed.post_activity(author=cast.teammate, account=cast.account, body="@alice look")
    work_happenings()
    assert told(cast.owner) == [("mention", post.pk)]
    assert told(cast.teammate) == []  # never the actor


def test_mention_of_outsider_is_not_notified(cast: Cast) -> None:
    feed.post_activity(author=cast.owner, account=cast.account, body="@erin and @bob see this")
    work_happenings()
    assert told(cast.outsider) == []
    assert [kind for kind, _ in told(cast.teammate)] == ["mention"]


def test_self_mention_tells_nobody(cast: Cast) -> None:
    feed.post_activity(author=cast.owner, account=cast.account, body="note to @alice")
    work_happenings()
    assert Notification.objects.count() == 0


def test_reply_reaches_the_thread_starter_and_followers_once_each(cast: Cast) -> None:
    root = feed.post_activity(author=cast.owner, account=cast.account, body="plan?")
    feed.add_comment(actor=cast.teammate, parent=root, body="first")  # bob now follows
    work_happenings()  # as the worker does, right after each commit
    reply = feed.add_comment(actor=cast.support, parent=root, body="@alice second")
    work_happenings()
    # alice: a reply to her thread (from bob), then a mention (from carol) — one per happening.
    assert [kind for kind, _ in told(cast.owner)] == ["reply", "mention"]
    assert told(cast.teammate) == [("reply", reply.pk)]
    assert told(cast.support) == []


def test_muted_thread_stays_silent(cast: Cast) -> None:
    root = feed.post_activity(author=cast.owner, account=cast.account, body="plan?")
    feed.set_thread_subscription(user=cast.owner, thread=root, is_muted=True)
    feed.add_comment(actor=cast.teammate, parent=root, body="reply")
    work_happenings()
    assert told(cast.owner) == []


def test_assignment_notifies_the_assignee(cast: Cast) -> None:
    task = feed.create_task(
        actor=cast.owner, account=cast.account, subject="Send quote", assignee=cast.teammate
    )
    work_happenings()
    assert told(cast.teammate) == [("assigned", task.pk)]


def test_request_status_reaches_its_author(cast: Cast) -> None:
    request = feed.raise_request(actor=cast.owner, account=cast.account, subject="Broken login")
    feed.update_request(actor=cast.support, request=request, assignee=cast.support)
    feed.update_request(actor=cast.support, request=request, status="resolved", resolution="ok")
    work_happenings()
    assert [kind for kind, _ in told(cast.owner)] == ["request_status"]
    title = Notification.objects.get(recipient=cast.owner).title
    assert "resolved" in title


def test_followed_account_activity_goes_to_the_digest_by_default(cast: Cast) -> None:
    feed.follow_account(user=cast.support, account=cast.account)
    feed.log_call(actor=cast.owner, account=cast.account, body="talked")
    work_happenings()
    item = Notification.objects.get(recipient=cast.support)
    assert (item.kind, item.delivery) == ("followed_activity", "digest")
    # Not in the inbox, not pushed: it waits for the digest.
    assert not Event.objects.filter(stream=f"notifications:{cast.support.pk}").exists()


def test_follow_kinds_narrow_what_a_follower_hears(cast: Cast) -> None:
    feed.follow_account(user=cast.support, account=cast.account, kinds=["call"])
    feed.post_activity(author=cast.owner, account=cast.account, body="news")
    feed.log_call(actor=cast.owner, account=cast.account, body="call")
    work_happenings()
    assert [Activity.objects.get(pk=pk).kind for _, pk in told(cast.support)] == ["call"]


def test_per_follow_delivery_overrides_the_general_choice(cast: Cast) -> None:
    actions.set_preferences(user=cast.support, choices={"followed_activity": "off"})
    feed.follow_account(user=cast.support, account=cast.account, delivery="in_app")
    feed.post_activity(author=cast.owner, account=cast.account, body="news")
    work_happenings()
    assert Notification.objects.get(recipient=cast.support).delivery == "in_app"


def test_kind_turned_off_is_not_made(cast: Cast) -> None:
    actions.set_preferences(user=cast.owner, choices={"mention": "off"})
    feed.post_activity(author=cast.teammate, account=cast.account, body="@alice hi")
    work_happenings()
    assert told(cast.owner) == []


def test_follower_who_lost_access_is_not_told(cast: Cast) -> None:
    crm_actions.grant_account_access(actor=cast.admin, account=cast.account, user=cast.outsider)
    feed.follow_account(user=cast.outsider, account=cast.account)
    crm_actions.revoke_account_access(actor=cast.admin, account=cast.account, user=cast.outsider)
    feed.post_activity(author=cast.owner, account=cast.account, body="@erin secret")
    work_happenings()
    assert told(cast.outsider) == []


def test_a_happening_worked_twice_notifies_once(cast: Cast) -> None:
    feed.post_activity(author=cast.teammate, account=cast.account, body="@alice hi")
    pk = Happening.objects.get().pk
    assert actions.notify_happening(pk) == 1
    assert actions.notify_happening(pk) == 0
    assert Notification.objects.count() == 1


def test_sweep_works_happenings_whose_task_was_lost(cast: Cast) -> None:
    feed.post_activity(author=cast.teammate, account=cast.account, body="@alice hi")
    Happening.objects.update(created_at=timezone.now() - dt.timedelta(minutes=5))
    assert actions.sweep_happenings() == 1
    assert not Happening.objects.exists()


def test_in_app_notification_is_pushed_to_its_recipient_only(cast: Cast) -> None:
    feed.post_activity(author=cast.teammate, account=cast.account, body="@alice hi")
    work_happenings()
    pushed = Event.objects.filter(type="notification.created")
    assert [event.stream for event in pushed] == [f"notifications:{cast.owner.pk}"]
    data = pushed.get().data
    assert data["unread"] == 1 and data["kind"] == "mention" and data["account"] == cast.account.pk


def test_demo_history_notifies_nobody(cast: Cast) -> None:
    from feed import happenings

    with happenings.quiet():
        feed.post_activity(author=cast.teammate, account=cast.account, body="@alice old news")
    assert not Happening.objects.exists()


def test_deleted_activity_notifies_nobody(cast: Cast) -> None:
    post = feed.post_activity(author=cast.teammate, account=cast.account, body="@alice oops")
    feed.delete_activity(actor=cast.teammate, activity=post)
    work_happenings()
    assert Notification.objects.count() == 0


def test_request_worked_through_the_api_tells_its_author(cast: Cast) -> None:
    from tests.conftest import client_for

    request = feed.raise_request(actor=cast.owner, account=cast.account, subject="Broken login")
    url = f"/api/v1/activities/{request.pk}/"
    # The author may not move their own request, nor pick who works it.
    author = client_for(cast.owner)
    assert author.patch(url, {"status": "resolved"}, format="json").status_code == 403
    assert author.patch(url, {"assignee": "carol"}, format="json").status_code == 403
    support = client_for(cast.support)
    bad = support.patch(url, {"assignee": "nobody"}, format="json")
    assert bad.status_code == 400 and "assignee" in bad.json()
    assert support.patch(url, {"status": "done"}, format="json").status_code == 400
    taken = support.patch(url, {"assignee": "carol", "status": "in_progress"}, format="json")
    assert taken.status_code == 200, taken.content
    assert (taken.json()["status"], taken.json()["assignee"]["username"]) == (
        "in_progress",
        "carol",
    )
    work_happenings()
    assert [kind for kind, _ in told(cast.owner)] == ["request_status"]
    assert told(cast.support) == []  # she assigned it to herself


def _everything_at_once(cast: Cast) -> None:
    """Happenings of every rule on two accounts: mentions (one of an outsider), a reply to a
    followed and a muted thread, follow kinds, a per-follow delivery, a kind turned off, a task,
    a request moving on, a follower who lost access, a deleted post, and inbound email."""
    actions.set_preferences(user=cast.teammate, choices={"reply": "in_app", "mention": "off"})
    feed.follow_account(user=cast.support, account=cast.account, kinds=["call", "email"])
    feed.follow_account(user=cast.manager, account=cast.account, delivery="in_app")
    crm_actions.grant_account_access(actor=cast.admin, account=cast.account, user=cast.outsider)
    feed.follow_account(user=cast.outsider, account=cast.account)
    crm_actions.revoke_account_access(actor=cast.admin, account=cast.account, user=cast.outsider)
    root = feed.post_activity(author=cast.owner, account=cast.account, body="plan? @bob @erin")
    feed.add_comment(actor=cast.teammate, parent=root, body="first")
    muted = feed.post_activity(author=cast.teammate, account=cast.account, body="quiet one")
    feed.set_thread_subscription(user=cast.teammate, thread=muted, is_muted=True)
    feed.add_comment(actor=cast.support, parent=muted, body="@alice hush")
    feed.add_comment(actor=cast.support, parent=root, body="@alice @dave second")
    feed.log_call(actor=cast.teammate, account=cast.account, body="talked")
    feed.create_task(
        actor=cast.owner, account=cast.account, subject="Send quote", assignee=cast.teammate
    )
    request = feed.raise_request(actor=cast.owner, account=cast.account, subject="Broken login")
    feed.update_request(actor=cast.support, request=request, assignee=cast.support)
    feed.update_request(actor=cast.support, request=request, status="resolved", resolution="ok")
    gone = feed.post_activity(author=cast.teammate, account=cast.account, body="@alice oops")
    feed.delete_activity(actor=cast.teammate, activity=gone)
    feed.post_activity(author=cast.outsider, account=cast.west_account, body="west news")
    for n in range(3):
        feed.log_email(account=cast.account, subject=f"Re: quote {n}", body="ok", details={})
        feed.log_email(account=cast.west_account, subject=f"Hello {n}", body="hi", details={})


def _outcome() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    made = list(
        Notification.objects.order_by("id").values_list(
            "recipient", "kind", "delivery", "activity", "account", "actor", "title", "source"
        )
    )
    pushed = [
        (event.stream, {k: v for k, v in event.data.items() if k not in ("id", "created_at")})
        for event in Event.objects.filter(type="notification.created").order_by("id")
    ]
    return made, pushed


def test_a_batch_notifies_exactly_as_one_happening_at_a_time(cast: Cast) -> None:
    from django.db import transaction

    _everything_at_once(cast)
    ids = list(Happening.objects.order_by("id").values_list("pk", flat=True))

    class Undo(Exception):
        pass

    one_by_one: tuple[list[tuple[object, ...]], list[tuple[object, ...]]] = ([], [])
    try:
        with transaction.atomic():
            assert sum(actions.notify_happening(pk) for pk in ids) > 10
            one_by_one = _outcome()
            raise Undo
    except Undo:
        pass
    assert Happening.objects.count() == len(ids)
    assert actions.notify_happenings(ids) == len(one_by_one[0])
    assert _outcome() == one_by_one
    kinds = {kind for _, kind, *_ in one_by_one[0]}
    assert kinds == {"mention", "reply", "followed_activity", "assigned", "request_status"}
    assert len(one_by_one[1]) > 3  # in-app and email ones were pushed, with unread counts
    assert not Happening.objects.exists()
    assert actions.notify_happenings(ids) == 0  # worked twice: told once


def test_a_batch_takes_the_same_statements_however_many_happenings(cast: Cast) -> None:
    """The inbound worker hands over ~50 happenings at once: the statements must not grow with
    them (one at a time it was ~16 per happening)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from crm.models import Account

    if connection.vendor != "postgresql":
        pytest.skip("a constant count is PostgreSQL's path; elsewhere events go one at a time")

    accounts = [cast.account, cast.west_account]
    accounts += [
        crm_actions.create_account(actor=cast.admin, name=f"Customer {n}", owner=cast.owner)
        for n in range(8)
    ]
    feed.follow_account(user=cast.support, account=cast.account, delivery="in_app")

    def statements(count: int) -> int:
        Happening.objects.all().delete()
        for n in range(count):
            feed.log_email(
                account=accounts[n % len(accounts)], subject=f"S{n}", body="b", details={}
            )
        ids = list(Happening.objects.values_list("pk", flat=True))
        with CaptureQueriesContext(connection) as queries:
            made = actions.notify_happenings(ids)
        assert made >= count  # the owner (or erin, on the west account) follows each
        return len(queries)

    few, many = statements(3), statements(60)
    assert many == few
    # Lock and read the happenings, five reads of facts, preferences, follows, told-already,
    # INSERT, DELETE; the push: recipients, unread count, the event write (four); savepoint.
    assert many <= 20, many
    assert Account.objects.count() == 10


def test_happenings_of_one_transaction_are_worked_by_one_task(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    """An inbound batch announces its emails in two generations: one task takes both; ids from
    an inner savepoint that rolled back are dropped with their rows, the others are kept."""
    from django.db import transaction

    def emails(n: int) -> list[Activity]:
        return feed.log_emails(
            [feed.NewEmail(account=cast.account, subject=f"Mail {i}", body="Hi") for i in range(n)]
        )

    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        first = emails(2)
        second = emails(1)
        try:
            with transaction.atomic():
                emails(1)
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
    notify = [c for c in callbacks if type(c).__name__ == "_NotifyAfterCommit"]
    assert len(notify) == 1
    kept = set(Happening.objects.values_list("pk", flat=True))
    assert len(kept) == 3
    assert kept <= set(notify[0].ids)  # type: ignore[attr-defined]
    assert actions.notify_happenings(notify[0].ids) == len(  # type: ignore[attr-defined]
        Notification.objects.filter(activity__in=[*first, *second])
    )
    assert not Happening.objects.exists()
