"""Bad input to the feed: a clear 400 or 404 with a message, never a 500, nothing half-written."""

from __future__ import annotations

import pytest

from feed.actions import delete_activity, post_activity
from feed.models import Activity
from realtime.models import Event
from tests.conftest import Cast, client_for


def writes() -> tuple[int, int]:
    return Activity.objects.count(), Event.objects.count()


@pytest.mark.parametrize(
    "payload",
    [
        {"kind": "unknown", "body": "x"},
        {"kind": "post", "body": ""},
        {"kind": "post", "body": "x" * 50_001},
        {"kind": "post", "body": {"nested": True}},
        {"kind": "task", "subject": "x", "due_at": "next tuesday"},
        {"kind": "task", "subject": "x", "due_at": "2026-13-45T99:00"},
        {"kind": "meeting", "subject": "x", "starts_at": "yesterday"},
        {"kind": "meeting", "subject": "x"},
        {
            "kind": "meeting",
            "subject": "x",
            "starts_at": "2026-12-01T10:00:00Z",
            "attendees": "bob",
        },
        {
            "kind": "meeting",
            "subject": "x",
            "starts_at": "2026-12-01T10:00:00Z",
            "attendees": ["nobody"],
        },
        {
            "kind": "meeting",
            "subject": "x",
            "starts_at": "2026-12-01T10:00:00Z",
            "action_items": [{"subject": "y", "assignee": "erin"}],
        },
        {"kind": "call", "duration_minutes": -5},
        {"kind": "call", "outcome": "exploded"},
        {"kind": "task", "subject": "x" * 301},
        {"kind": "request"},
    ],
)
def test_bad_activity_is_a_400_and_writes_nothing(cast: Cast, payload: dict[str, object]) -> None:
    before = writes()
    response = client_for(cast.owner).post(
        f"/api/v1/accounts/{cast.account.pk}/activities/", payload, format="json"
    )
    assert response.status_code == 400, response.content
    assert response.json()
    assert writes() == before


def test_a_json_array_body_is_a_400(cast: Cast) -> None:
    response = client_for(cast.owner).post(
        f"/api/v1/accounts/{cast.account.pk}/activities/", [1, 2], format="json"
    )
    assert response.status_code == 400


def test_mentions_of_unknown_people_are_named_in_the_answer(cast: Cast) -> None:
    response = client_for(cast.owner).post(
        f"/api/v1/accounts/{cast.account.pk}/activities/", {"body": "cc @nobody"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["warnings"] == [
        {
            "code": "mention_unknown",
            "username": "nobody",
            "detail": "Nobody here is called @nobody; nobody was notified.",
        }
    ]


def test_a_reply_to_a_deleted_item_is_a_404(cast: Cast) -> None:
    post = post_activity(author=cast.owner, account=cast.account, body="gone soon")
    delete_activity(actor=cast.owner, activity=post)
    before = writes()
    response = client_for(cast.teammate).post(
        f"/api/v1/activities/{post.pk}/comments/", {"body": "too late"}, format="json"
    )
    assert response.status_code == 404
    assert writes() == before


def test_following_an_invisible_account_is_a_404(cast: Cast) -> None:
    response = client_for(cast.outsider).put(f"/api/v1/accounts/{cast.account.pk}/follow/")
    assert response.status_code == 404


@pytest.mark.parametrize("payload", [{"is_done": "maybe"}, {}, {"body": "x" * 50_001}])
def test_bad_changes_are_400s(cast: Cast, payload: dict[str, object]) -> None:
    post = post_activity(author=cast.owner, account=cast.account, body="hello")
    response = client_for(cast.owner).patch(
        f"/api/v1/activities/{post.pk}/", payload, format="json"
    )
    assert response.status_code == 400
    post.refresh_from_db()
    assert post.body == "hello"


def test_is_done_on_a_post_is_a_400(cast: Cast) -> None:
    post = post_activity(author=cast.owner, account=cast.account, body="hello")
    response = client_for(cast.owner).patch(
        f"/api/v1/activities/{post.pk}/", {"is_done": True}, format="json"
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "form",
    [
        {"kind": "meeting", "subject": "x"},
        {"kind": "meeting", "subject": "x", "starts_at": "soon"},
        {"kind": "call", "duration_minutes": "lots"},
        {"kind": "task", "subject": "x", "assignee": "nobody"},
        {"kind": "task", "subject": "", "assignee": ""},
        {"kind": "gossip"},
        {"kind": "post", "body": "\x00"},
    ],
)
def test_bad_page_forms_come_back_with_a_message(cast: Cast, form: dict[str, str]) -> None:
    from django.test import Client

    client = Client()
    client.force_login(cast.owner)
    before = writes()
    response = client.post(f"/accounts/{cast.account.pk}/compose/", form, follow=True)
    assert response.status_code == 200
    assert [m.level_tag for m in response.context["messages"]] == ["error"]
    assert writes() == before


def test_opportunity_change_through_the_api_is_tracked_and_checked(cast: Cast) -> None:
    opportunity = cast.account.opportunities.get()
    url = f"/api/v1/opportunities/{opportunity.pk}/"
    assert client_for(cast.owner).patch(url, {"stage": "won"}, format="json").status_code == 400
    assert client_for(cast.owner).patch(url, {"owner": "nobody"}, format="json").status_code == 400
    assert (
        client_for(cast.outsider).patch(url, {"stage": "proposal"}, format="json").status_code
        == 404
    )
    response = client_for(cast.owner).patch(
        url, {"stage": "proposal", "amount": "60000"}, format="json"
    )
    assert response.status_code == 200
    change = Activity.objects.get(kind="change")
    assert set(change.details["fields"]) == {"stage", "amount"}


def test_account_reassignment_by_a_teammate_is_a_403(cast: Cast) -> None:
    response = client_for(cast.teammate).patch(
        f"/api/v1/accounts/{cast.account.pk}/", {"owner": "bob"}, format="json"
    )
    assert response.status_code == 403
    cast.account.refresh_from_db()
    assert cast.account.owner == cast.owner
