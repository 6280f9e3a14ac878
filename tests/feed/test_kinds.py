"""Every activity kind as structured data, through the API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from crm.models import Contact
from feed.models import Activity, Attendee
from tests.conftest import Cast, client_for


def url(cast: Cast) -> str:
    return f"/api/v1/accounts/{cast.account.pk}/activities/"


def test_meeting_with_attendees_decisions_and_action_items(cast: Cast) -> None:
    maria = Contact.objects.get(account=cast.account)
    starts = timezone.now() + dt.timedelta(days=1)
    response = client_for(cast.owner).post(
        url(cast),
        {
            "kind": "meeting",
            "subject": "Quarterly review",
            "body": "Walk through adoption.",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + dt.timedelta(hours=1)).isoformat(),
            "attendees": ["bob"],
            "contacts": [maria.pk],
            "decisions": ["Pilot a second team"],
            "action_items": [{"subject": "Send pilot plan", "assignee": "bob"}],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    meeting = response.json()
    assert meeting["kind"] == "meeting"
    assert meeting["starts_at"] is not None and meeting["ends_at"] is not None
    assert [a["name"] for a in meeting["details"]["attendees"]] == ["Bob", "Maria Garcia"]
    assert meeting["details"]["decisions"] == ["Pilot a second team"]
    assert Attendee.objects.filter(activity_id=meeting["id"]).count() == 2
    task = Activity.objects.get(kind="task")
    assert (task.subject, task.assignee, task.details) == (
        "Send pilot plan",
        cast.teammate,
        {"meeting": meeting["id"]},
    )


def test_meeting_form_assigns_an_action_item_to_the_mention_that_ends_its_line(
    cast: Cast,
) -> None:
    from django.test import Client

    client = Client()
    client.force_login(cast.owner)
    response = client.post(
        f"/accounts/{cast.account.pk}/compose/",
        {
            "kind": "meeting",
            "subject": "Quarterly review",
            "starts_at": "2026-12-10T15:00",
            "action_items": "Send the contract to legal @bob\nBook the follow-up\n@bob",
        },
    )
    assert response.status_code == 302
    # A line that is only a mention is a subject, not an assignment; unassigned items are the
    # author's, as in the API.
    tasks = Activity.objects.filter(kind="task").order_by("pk")
    assert [(t.subject, t.assignee) for t in tasks] == [
        ("Send the contract to legal", cast.teammate),
        ("Book the follow-up", cast.owner),
        ("@bob", cast.owner),
    ]


def test_meeting_form_action_item_for_an_outsider_writes_nothing(cast: Cast) -> None:
    from django.test import Client

    client = Client()
    client.force_login(cast.owner)
    response = client.post(
        f"/accounts/{cast.account.pk}/compose/",
        {
            "kind": "meeting",
            "subject": "Quarterly review",
            "starts_at": "2026-12-10T15:00",
            "action_items": "Send the contract to legal @erin",
        },
        follow=True,
    )
    [message] = response.context["messages"]
    assert message.level_tag == "error" and "erin" in str(message), str(message)
    assert not Activity.objects.exists()


def test_meeting_attendee_who_cannot_see_the_account_is_refused(cast: Cast) -> None:
    response = client_for(cast.owner).post(
        url(cast),
        {
            "kind": "meeting",
            "subject": "x",
            "starts_at": timezone.now().isoformat(),
            "attendees": ["erin"],
        },
        format="json",
    )
    assert response.status_code == 400
    assert "erin cannot see this account" in str(response.json())
    assert not Activity.objects.exists()


def test_meeting_cannot_end_before_it_starts(cast: Cast) -> None:
    now = timezone.now()
    response = client_for(cast.owner).post(
        url(cast),
        {
            "kind": "meeting",
            "subject": "x",
            "starts_at": now.isoformat(),
            "ends_at": (now - dt.timedelta(hours=1)).isoformat(),
        },
        format="json",
    )
    assert response.status_code == 400


def test_call_is_logged_with_contact_duration_and_outcome(cast: Cast) -> None:
    maria = Contact.objects.get(account=cast.account)
    response = client_for(cast.teammate).post(
        url(cast),
        {
            "kind": "call",
            "contact": maria.pk,
            "duration_minutes": 12,
            "outcome": "left_voicemail",
            "body": "Asked for a call back.",
        },
        format="json",
    )
    assert response.status_code == 201
    call = response.json()
    assert (call["subject"], call["duration_seconds"], call["outcome"], call["contact"]) == (
        "Call with Maria Garcia",
        720,
        "left_voicemail",
        maria.pk,
    )


def test_a_contact_of_another_account_looks_like_no_contact(cast: Cast) -> None:
    from crm import actions as crm_actions

    other = crm_actions.create_contact(actor=cast.admin, account=cast.west_account, first_name="Li")
    client = client_for(cast.owner)
    hidden = client.post(url(cast), {"kind": "call", "contact": other.pk}, format="json")
    missing = client.post(url(cast), {"kind": "call", "contact": 999_999}, format="json")
    assert hidden.status_code == missing.status_code == 400
    assert hidden.json() == missing.json()


def test_call_in_the_future_is_refused(cast: Cast) -> None:
    later = (timezone.now() + dt.timedelta(days=2)).isoformat()
    response = client_for(cast.owner).post(
        url(cast), {"kind": "call", "occurred_at": later}, format="json"
    )
    assert response.status_code == 400


def test_task_is_assigned_due_and_shows_overdue(cast: Cast) -> None:
    yesterday = timezone.now() - dt.timedelta(days=1)
    response = client_for(cast.owner).post(
        url(cast),
        {
            "kind": "task",
            "subject": "Send contract",
            "assignee": "bob",
            "due_at": yesterday.isoformat(),
        },
        format="json",
    )
    assert response.status_code == 201
    task = response.json()
    assert (task["assignee"]["username"], task["is_done"], task["is_overdue"]) == (
        "bob",
        False,
        True,
    )


def test_task_for_an_unknown_person_is_a_400(cast: Cast) -> None:
    response = client_for(cast.owner).post(
        url(cast), {"kind": "task", "subject": "x", "assignee": "nobody"}, format="json"
    )
    assert response.status_code == 400


def test_assignee_ticks_a_task_off_and_others_may_not(cast: Cast) -> None:
    task = (
        client_for(cast.owner)
        .post(url(cast), {"kind": "task", "subject": "Call back", "assignee": "bob"}, format="json")
        .json()
    )
    detail = f"/api/v1/activities/{task['id']}/"
    assert (
        client_for(cast.manager).patch(detail, {"is_done": True}, format="json").status_code == 403
    )
    done = client_for(cast.teammate).patch(detail, {"is_done": True}, format="json")
    assert done.status_code == 200
    assert (done.json()["is_done"], done.json()["is_overdue"]) == (True, False)


def test_request_opens(cast: Cast) -> None:
    response = client_for(cast.support).post(
        url(cast),
        {"kind": "request", "subject": "SSO fails", "body": "Since Monday."},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["status"] == "open"


@pytest.mark.parametrize("kind", ["email", "change", "system", "comment", "nonsense"])
def test_kinds_that_clients_cannot_create_directly(cast: Cast, kind: str) -> None:
    response = client_for(cast.owner).post(url(cast), {"kind": kind, "body": "x"}, format="json")
    assert response.status_code == 400
    assert not Activity.objects.exists()


def test_status_and_assignee_fields_are_not_mass_assignable(cast: Cast) -> None:
    response = client_for(cast.owner).post(
        url(cast),
        {"kind": "request", "subject": "x", "status": "resolved", "assignee": "admin", "author": 1},
        format="json",
    )
    assert response.status_code == 201
    request = Activity.objects.get()
    assert (request.status, request.assignee_id, request.author_id) == ("open", None, cast.owner.pk)


def test_a_logged_activity_is_stored_as_the_orm_stores_it(cast: Cast) -> None:
    """`log_activity` writes its INSERT by hand: every field, `auto_now_add` and JSON included,
    reads back as the ORM would have saved it."""
    from django.forms.models import model_to_dict

    from feed.actions import log_call

    maria = Contact.objects.get(account=cast.account)
    made = log_call(
        actor=cast.owner,
        account=cast.account,
        contact=maria,
        subject="Call with Grüße ✓",
        body="Línea 1\nline 2",
        duration_seconds=90,
        outcome="connected",
    )
    stored = Activity.objects.get(pk=made.pk)
    assert made.created_at is not None and made._state.adding is False
    assert model_to_dict(stored) == model_to_dict(made)
    assert (stored.created_at, stored.details, stored.reaction_summary) == (
        made.created_at,
        {},
        {},
    )
