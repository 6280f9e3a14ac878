"""POST /api/v1/accounts/<id>/meetings/: a meeting summary from another tool."""

from __future__ import annotations

from feed.models import Activity
from tests.conftest import Cast, client_for

SUMMARY = {
    "subject": "Renewal call",
    "starts_at": "2026-11-20T10:00:00Z",
    "ends_at": "2026-11-20T10:45:00Z",
    "notes": "Walked through the pricing.",
    "attendees": ["bob", "maria@acme.example", "erin", "guest@partner.example"],
    "decisions": ["Move to the annual plan"],
    "action_items": [
        {"subject": "Send the revised quote", "assignee": "alice@tidings.example"},
        {
            "subject": "Book the security review",
            "assignee": "bob",
            "due_at": "2026-11-27T09:00:00Z",
        },
    ],
}


def test_a_summary_becomes_a_meeting_with_attendees_and_tasks(cast: Cast) -> None:
    cast.owner.email = "alice@tidings.example"
    cast.owner.save()
    response = client_for(cast.owner).post(
        f"/api/v1/accounts/{cast.account.pk}/meetings/", SUMMARY, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    meeting = Activity.objects.get(pk=body["activity"]["id"])
    assert meeting.kind == "meeting" and meeting.body == "Walked through the pricing."
    assert meeting.details["decisions"] == ["Move to the annual plan"]
    attendees = {(a.user_id, a.contact_id) for a in meeting.attendees.all()}
    maria = cast.account.contacts.get()
    assert attendees == {(cast.teammate.pk, None), (None, maria.pk)}
    # erin cannot see the account; the guest is nobody we know.
    assert body["unmatched_attendees"] == ["erin", "guest@partner.example"]
    tasks = Activity.objects.filter(pk__in=body["tasks"]).order_by("subject")
    assert [(t.subject, t.assignee_id) for t in tasks] == [
        ("Book the security review", cast.teammate.pk),
        ("Send the revised quote", cast.owner.pk),
    ]


def test_an_action_item_for_someone_who_cannot_see_the_account_is_refused(cast: Cast) -> None:
    summary = {**SUMMARY, "action_items": [{"subject": "x", "assignee": "erin"}]}
    response = client_for(cast.owner).post(
        f"/api/v1/accounts/{cast.account.pk}/meetings/", summary, format="json"
    )
    assert response.status_code == 400
    assert not Activity.objects.filter(kind="meeting").exists()


def test_outsiders_get_404(cast: Cast) -> None:
    response = client_for(cast.outsider).post(
        f"/api/v1/accounts/{cast.account.pk}/meetings/", SUMMARY, format="json"
    )
    assert response.status_code == 404
