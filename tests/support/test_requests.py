"""Requests: raising them, who may work them, what the queue lists, who hears of overdue ones."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from feed.actions import due_after, raise_request, update_request
from feed.models import Activity, AuditEntry, RequestQueue
from feed.streams import _requests_sources
from notifications.actions import send_request_alerts
from notifications.models import Notification
from realtime.models import Event
from support.queries import QueueFilters, request_queue
from tests.conftest import Cast, client_for, make_account

UTC = dt.UTC


def _page(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_due_time_follows_priority_in_hours_and_business_days(settings: Any) -> None:
    settings.TIME_ZONE = "UTC"
    friday = dt.datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    assert due_after("urgent", friday) == friday + dt.timedelta(hours=4)
    assert due_after("high", friday) == dt.datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Monday
    assert due_after("normal", friday) == dt.datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    settings.TIDINGS_REQUEST_DUE = {**settings.TIDINGS_REQUEST_DUE, "urgent": "1h"}
    assert due_after("urgent", friday) == friday + dt.timedelta(hours=1)


def test_api_raises_a_request_with_priority_and_queue_and_ignores_the_rest(cast: Cast) -> None:
    billing = RequestQueue.objects.create(name="Billing", lead=cast.support)
    before = timezone.now()
    response = client_for(cast.owner).post(
        f"/api/v1/accounts/{cast.account.pk}/activities/",
        {
            "kind": "request",
            "subject": "Invoice shows the wrong VAT number",
            "priority": "urgent",
            "queue": billing.pk,
            # Not the raiser's to choose: ignored.
            "status": "resolved",
            "assignee": "carol",
            "author": cast.admin.pk,
            "account": cast.west_account.pk,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["status"], data["priority"], data["queue"]) == ("open", "urgent", billing.pk)
    assert data["assignee"] is None and data["author"]["username"] == "alice"
    assert data["account"] == cast.account.pk
    request = Activity.objects.get(pk=data["id"])
    assert request.due_at is not None
    assert (
        before + dt.timedelta(hours=4) <= request.due_at <= timezone.now() + dt.timedelta(hours=4)
    )


def test_api_refuses_an_unknown_priority_or_queue(cast: Cast) -> None:
    url = f"/api/v1/accounts/{cast.account.pk}/activities/"
    client = client_for(cast.owner)
    bad_priority = {"kind": "request", "subject": "x", "priority": "asap"}
    assert client.post(url, bad_priority, format="json").status_code == 400
    bad_queue = {"kind": "request", "subject": "x", "queue": 999_999}
    assert client.post(url, bad_queue, format="json").status_code == 400


def test_request_without_queue_goes_to_the_default_queue(cast: Cast) -> None:
    request = raise_request(actor=cast.owner, account=cast.account, subject="Help")
    assert request.queue is not None and request.queue.name == "Support"
    assert request.priority == "normal"


@pytest.mark.parametrize(
    "change", [{"status": "resolved"}, {"assignee": "alice"}, {"priority": "urgent"}]
)
def test_author_cannot_move_assign_or_rerank_their_request(
    cast: Cast, change: dict[str, str]
) -> None:
    request = raise_request(actor=cast.owner, account=cast.account, subject="Help")
    response = client_for(cast.owner).patch(
        f"/api/v1/activities/{request.pk}/", change, format="json"
    )
    assert response.status_code == 403
    request.refresh_from_db()
    assert (request.status, request.assignee_id, request.priority) == ("open", None, "normal")
    assert not AuditEntry.objects.filter(activity=request).exists()


def test_patch_with_only_foreign_fields_changes_nothing(cast: Cast) -> None:
    request = raise_request(actor=cast.owner, account=cast.account, subject="Help")
    response = client_for(cast.support).patch(
        f"/api/v1/activities/{request.pk}/",
        {"account": cast.west_account.pk, "author": cast.support.pk, "kind": "post"},
        format="json",
    )
    assert response.status_code == 400
    request.refresh_from_db()
    assert (request.account_id, request.author_id, request.kind) == (
        cast.account.pk,
        cast.owner.pk,
        "request",
    )


def test_page_form_of_the_author_is_refused_and_changes_nothing(cast: Cast) -> None:
    request = raise_request(actor=cast.owner, account=cast.account, subject="Help")
    response = _page(cast.owner).post(
        f"/requests/{request.pk}/status/", {"status": "resolved", "author": cast.support.pk}
    )
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == "open" and request.author_id == cast.owner.pk


def test_outsider_cannot_work_or_see_a_request_on_an_account_they_cannot_see(cast: Cast) -> None:
    request = raise_request(actor=cast.owner, account=cast.account, subject="Help")
    client = _page(cast.outsider)
    assert client.get(f"/requests/{request.pk}/").status_code == 404
    assert client.post(f"/requests/{request.pk}/claim/").status_code == 404
    assert client.get(f"/requests/{request.pk + 1000}/").status_code == 404
    request.refresh_from_db()
    assert request.assignee_id is None


def test_support_claims_moves_and_resolves_and_history_records_each_step(cast: Cast) -> None:
    request = raise_request(actor=cast.owner, account=cast.account, subject="Help")
    client = _page(cast.support)
    assert client.post(f"/requests/{request.pk}/claim/").status_code == 302
    client.post(f"/requests/{request.pk}/status/", {"status": "waiting"})
    client.post(f"/requests/{request.pk}/assign/", {"assignee": "dave"})
    client.post(f"/requests/{request.pk}/priority/", {"priority": "high"})
    client.post(f"/requests/{request.pk}/resolve/", {"resolution": "Reset the password"})
    request.refresh_from_db()
    assert (request.status, request.assignee_id, request.priority) == (
        "resolved",
        cast.manager.pk,
        "high",
    )
    assert request.details["resolution"] == "Reset the password"
    steps = list(AuditEntry.objects.filter(activity=request).values_list("action", "detail"))
    assert steps == [
        ("assigned", {"from": None, "to": "carol"}),
        ("status", {"from": "open", "to": "in_progress"}),
        ("status", {"from": "in_progress", "to": "waiting"}),
        ("assigned", {"from": "carol", "to": "dave"}),
        ("priority", {"from": "normal", "to": "high"}),
        ("status", {"from": "waiting", "to": "resolved"}),
    ]
    page = client.get(f"/requests/{request.pk}/").content.decode()
    assert "assigned it to dave" in page and "Reset the password" in page


def test_the_assignee_may_move_the_status_but_not_reassign(cast: Cast) -> None:
    request = raise_request(actor=cast.owner, account=cast.account, subject="Help")
    update_request(actor=cast.support, request=request, assignee=cast.teammate)
    update_request(actor=cast.teammate, request=request, status="in_progress")
    with pytest.raises(PermissionDenied):
        update_request(actor=cast.teammate, request=request, assignee=cast.owner)


def test_a_change_reaches_the_account_the_authors_team_and_the_queue(cast: Cast) -> None:
    request = raise_request(actor=cast.owner, account=cast.account, subject="Help")
    last = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
    update_request(actor=cast.support, request=request, status="in_progress")
    assert list(Event.objects.filter(id__gt=last).order_by("id").values_list("stream", "type")) == [
        (f"account:{cast.account.pk}", "activity.updated"),
        (f"team:{cast.east.pk}", "activity.updated"),
        (f"requests:{cast.east.pk}", "activity.updated"),
    ]


def test_requests_stream_reads_only_what_its_reader_may_see(cast: Cast) -> None:
    east, west = f"requests:{cast.east.pk}", f"requests:{cast.west.pk}"
    assert {east, west} <= _requests_sources(cast.support, None)
    assert _requests_sources(cast.owner, None) == {east}
    assert _requests_sources(cast.outsider, None) == {west}
    assert _requests_sources(cast.manager, None) == {east}
    # A grant outside one's team comes through that account's own stream.
    from crm.models import AccountTeamMember

    AccountTeamMember.objects.create(account=cast.west_account, user=cast.owner)
    assert _requests_sources(cast.owner, None) == {east, f"account:{cast.west_account.pk}"}


@pytest.fixture
def queue_data(cast: Cast) -> dict[str, Activity]:
    now = timezone.now()
    mine = raise_request(actor=cast.owner, account=cast.account, subject="Mine", priority="high")
    update_request(actor=cast.support, request=mine, assignee=cast.support)
    late = raise_request(
        actor=cast.owner,
        account=cast.account,
        subject="Late",
        priority="urgent",
        due_at=now - dt.timedelta(hours=1),
    )
    west = raise_request(actor=cast.outsider, account=cast.west_account, subject="West")
    done = raise_request(actor=cast.owner, account=cast.account, subject="Done")
    update_request(actor=cast.support, request=done, status="resolved")
    return {"mine": mine, "late": late, "west": west, "done": done}


def _subjects(user: Any, **filters: Any) -> list[str]:
    return [r.subject for r in request_queue(user, QueueFilters(**filters))]


def test_queue_filters(cast: Cast, queue_data: dict[str, Activity]) -> None:
    support = cast.support
    assert _subjects(support) == ["Late", "Mine", "West"]  # by due time, resolved left out
    assert _subjects(support, mine=True) == ["Mine"]
    assert _subjects(support, unassigned=True) == ["Late", "West"]
    assert _subjects(support, team=cast.west.pk) == ["West"]
    assert _subjects(support, overdue=True) == ["Late"]
    assert _subjects(support, priority="high") == ["Mine"]
    assert _subjects(support, account=cast.west_account.pk) == ["West"]
    assert "Done" in _subjects(support, include_resolved=True)


def test_queue_lists_only_visible_accounts(cast: Cast, queue_data: dict[str, Activity]) -> None:
    assert _subjects(cast.outsider) == ["West"]
    assert _subjects(cast.owner) == ["Late", "Mine"]
    assert _subjects(cast.outsider, account=cast.account.pk) == []


def test_queue_page_filters_from_the_query_string(
    cast: Cast, queue_data: dict[str, Activity]
) -> None:
    page = _page(cast.support).get("/requests/?overdue=1&team=nonsense&priority=zzz")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'class="request-subject">Late<' in body and 'class="request-subject">Mine<' not in body
    assert 'class="pill overdue" data-overdue' in body


def test_queue_costs_the_same_queries_however_many_requests(cast: Cast) -> None:
    client = _page(cast.support)
    raise_request(actor=cast.owner, account=cast.account, subject="One")
    client.get("/requests/")
    with CaptureQueriesContext(connection) as few:
        client.get("/requests/")
    for n in range(8):
        other = make_account(cast.admin, cast.teammate, f"Other {n}")
        request = raise_request(actor=cast.teammate, account=other, subject=f"R{n}")
        update_request(actor=cast.support, request=request, assignee=cast.support)
    with CaptureQueriesContext(connection) as many:
        client.get("/requests/")
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]


def test_overdue_request_tells_its_assignee_and_queue_lead_once(cast: Cast) -> None:
    queue = RequestQueue.objects.create(name="Escalations", lead=cast.manager)
    now = timezone.now()
    request = raise_request(
        actor=cast.owner,
        account=cast.account,
        subject="Down",
        queue=queue,
        due_at=now - dt.timedelta(minutes=5),
    )
    update_request(actor=cast.support, request=request, assignee=cast.support)
    assert send_request_alerts(now) == 2
    assert send_request_alerts(now) == 0  # idempotent: Notification.source
    told = set(
        Notification.objects.filter(kind="request_overdue").values_list(
            "recipient__username", flat=True
        )
    )
    assert told == {"carol", "dave"}
    update_request(actor=cast.support, request=request, status="resolved")
    assert send_request_alerts(now + dt.timedelta(minutes=1)) == 0


def test_overdue_unassigned_request_reaches_the_lead_only_if_they_can_see_it(cast: Cast) -> None:
    queue = RequestQueue.objects.create(name="West desk", lead=cast.outsider)
    now = timezone.now()
    raise_request(
        actor=cast.owner,
        account=cast.account,
        subject="Down",
        queue=queue,
        due_at=now - dt.timedelta(minutes=5),
    )
    assert send_request_alerts(now) == 0


def test_a_request_claimed_meanwhile_is_not_taken_over(cast: Cast) -> None:
    from django.core.exceptions import ValidationError

    from crm.models import User
    from feed.actions import claim_request

    second = User.objects.create(username="sam", role="support")
    request = raise_request(actor=cast.owner, account=cast.account, subject="Login broken")
    stale = Activity.objects.get(pk=request.pk)  # what sam's page showed: unassigned, open
    claim_request(actor=cast.support, request=request)
    with pytest.raises(ValidationError, match="taken this request"):
        claim_request(actor=second, request=stale)
    request.refresh_from_db()
    assert request.assignee == cast.support and request.status == "in_progress"


def test_the_author_of_a_request_follows_it(cast: Cast) -> None:
    from feed.models import ThreadSubscription
    from feed.queries import followed_thread_ids

    request = raise_request(actor=cast.teammate, account=cast.account, subject="Export fails")
    assert request.pk in followed_thread_ids(cast.teammate)
    assert ThreadSubscription.objects.get(user=cast.teammate, thread=request).is_muted is False


def test_request_page_costs_the_same_queries_however_long_its_thread(cast: Cast) -> None:
    from feed.actions import add_comment

    request = raise_request(actor=cast.owner, account=cast.account, subject="Help")
    client = _page(cast.support)
    add_comment(actor=cast.teammate, parent=request, body="me too")
    client.get(f"/requests/{request.pk}/")
    with CaptureQueriesContext(connection) as few:
        assert client.get(f"/requests/{request.pk}/").status_code == 200
    for n in range(6):
        add_comment(actor=cast.support if n % 2 else cast.owner, parent=request, body=f"r{n}")
    with CaptureQueriesContext(connection) as many:
        body = client.get(f"/requests/{request.pk}/").content.decode()
    assert "r5" in body
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]


def test_request_page_follows_its_account_stream_from_a_cursor(cast: Cast) -> None:
    request = raise_request(actor=cast.owner, account=cast.account, subject="Help")
    body = _page(cast.support).get(f"/requests/{request.pk}/").content.decode()
    assert f'data-stream="account:{cast.account.pk}"' in body
    assert f'data-only-parent="{request.pk}"' in body and "data-cursor=" in body
    assert "<title>Help · Tidings</title>" in body
    assert body.count('id="activity-template"') == 1  # one template, at the end, not in the nav
