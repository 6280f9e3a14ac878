"""Internal notes on requests, and replies to the customer of a request raised by email.

A note is a comment marked internal: only a request's thread takes one, everyone who can see the
account reads it, notification rules treat it as a reply, and no mail to a customer carries it.
A reply to the customer is mail from the support address, threaded onto the customer's message,
and recorded in the request's thread as an outbound email.
"""

from __future__ import annotations

import email
from email import policy
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.utils import timezone

from feed import actions as feed
from feed.models import Activity
from integrations.email.message_ids import activity_id_from_message_id
from integrations.models import InboundEmail
from integrations.support.replies import (
    deliver_customer_reply,
    deliver_pending_customer_replies,
    reply_to_customer,
)
from notifications.models import Notification
from tests.conftest import Cast, client_for, work_happenings
from tests.integrations.messages import email as raw_email
from tests.integrations.messages import ingest, request_by_mail
from tests.notifications.test_fan_out import told

CUSTOMER = "maria@acme.example"


def _page(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _mailed_request(cast: Cast) -> Activity:
    """A request Maria raised by writing to the support address."""
    return request_by_mail(message_id="<invoices-1@mail.acme.example>")


# --- Internal notes ---------------------------------------------------------------------------


def test_api_adds_an_internal_note_to_a_request_and_shows_it_as_one(cast: Cast) -> None:
    request = feed.raise_request(actor=cast.owner, account=cast.account, subject="Login fails")
    response = client_for(cast.support).post(
        f"/api/v1/activities/{request.pk}/comments/",
        {"body": "Looks like the SSO certificate expired.", "internal": True},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["internal"] is True
    plain = client_for(cast.support).post(
        f"/api/v1/activities/{request.pk}/comments/", {"body": "On it."}, format="json"
    )
    assert plain.json()["internal"] is False
    # Everyone who can see the account reads the note, marked: the request's author (a rep) too.
    thread = client_for(cast.owner).get(f"/api/v1/accounts/{cast.account.pk}/activities/").json()
    root = next(item for item in thread["results"] if item["id"] == request.pk)
    assert [(r["body"], r["internal"]) for r in root["replies"]] == [
        ("Looks like the SSO certificate expired.", True),
        ("On it.", False),
    ]
    detail = client_for(cast.manager).get(f"/api/v1/activities/{response.json()['id']}/")
    assert detail.status_code == 200 and detail.json()["internal"] is True


@pytest.mark.parametrize("kind", ["post", "task", "comment-on-post"])
def test_internal_is_refused_on_any_thread_but_a_request(cast: Cast, kind: str) -> None:
    if kind == "task":
        parent = feed.create_task(actor=cast.owner, account=cast.account, subject="Call back")
    else:
        parent = feed.post_activity(author=cast.owner, account=cast.account, body="Plan?")
        if kind == "comment-on-post":
            parent = feed.add_comment(actor=cast.teammate, parent=parent, body="Tuesday")
    response = client_for(cast.support).post(
        f"/api/v1/activities/{parent.pk}/comments/",
        {"body": "secret", "internal": True},
        format="json",
    )
    assert response.status_code == 400
    assert "requests only" in response.json()["internal"][0]
    assert not Activity.objects.filter(body="secret").exists()


def test_internal_note_on_a_reply_inside_a_request_joins_the_request_thread(cast: Cast) -> None:
    request = feed.raise_request(actor=cast.owner, account=cast.account, subject="Slow export")
    reply = feed.add_comment(actor=cast.owner, parent=request, body="Since the upgrade")
    note = feed.add_comment(actor=cast.support, parent=reply, body="Checked logs", is_internal=True)
    assert note.parent_id == request.pk and feed.is_internal_note(note)


def test_internal_must_be_a_boolean_and_extra_fields_change_nothing(cast: Cast) -> None:
    request = feed.raise_request(actor=cast.owner, account=cast.account, subject="Slow export")
    url = f"/api/v1/activities/{request.pk}/comments/"
    client = client_for(cast.support)
    assert client.post(url, {"body": "x", "internal": "perhaps"}, format="json").status_code == 400
    sneaky = {
        "body": "a note",
        "internal": True,
        "details": {"internal": False, "direction": "outbound"},
        "account": cast.west_account.pk,
        "kind": "email",
        "author": cast.admin.pk,
    }
    data = client.post(url, sneaky, format="json").json()
    note = Activity.objects.get(pk=data["id"])
    assert (note.kind, note.account_id, note.author_id) == (
        "comment",
        cast.account.pk,
        cast.support.pk,
    )
    assert note.details == {"internal": True}


def test_an_outsider_cannot_note_a_request_they_cannot_see(cast: Cast) -> None:
    request = feed.raise_request(actor=cast.owner, account=cast.account, subject="Slow export")
    response = client_for(cast.outsider).post(
        f"/api/v1/activities/{request.pk}/comments/", {"body": "x", "internal": True}, format="json"
    )
    assert response.status_code == 404
    assert not request.replies.exists()


def test_notes_notify_as_replies_do(cast: Cast) -> None:
    request = feed.raise_request(actor=cast.owner, account=cast.account, subject="Login fails")
    feed.add_comment(actor=cast.teammate, parent=request, body="Same for me")  # bob follows now
    work_happenings()
    note = feed.add_comment(
        actor=cast.support, parent=request, body="@dave this needs a decision", is_internal=True
    )
    work_happenings()
    # The author and the thread's follower hear of it as a reply; a mentioned manager as a mention.
    assert told(cast.owner)[-1] == ("reply", note.pk)
    assert told(cast.teammate) == [("reply", note.pk)]
    assert told(cast.manager) == [("mention", note.pk)]
    assert told(cast.outsider) == [] and told(cast.support) == []
    title = Notification.objects.get(recipient=cast.teammate).title
    assert title == "carol added an internal note to a request on Acme Logistics"


def test_request_page_shows_notes_apart_and_offers_the_right_composer(cast: Cast) -> None:
    request = feed.raise_request(actor=cast.owner, account=cast.account, subject="Login fails")
    feed.add_comment(actor=cast.support, parent=request, body="Cert expired", is_internal=True)
    page = _page(cast.owner).get(f"/requests/{request.pk}/").content.decode()
    assert "Internal note</span>" in page and "internal-note" in page
    # Raised in Tidings: a plain reply or a note, and no customer to email.
    assert 'value="reply"' in page and 'value="note"' in page
    assert 'value="customer"' not in page
    account_page = _page(cast.teammate).get(f"/accounts/{cast.account.pk}/").content.decode()
    assert "Internal note</span>" in account_page


def test_request_page_posts_a_note_with_the_note_button(cast: Cast) -> None:
    request = feed.raise_request(actor=cast.owner, account=cast.account, subject="Login fails")
    response = _page(cast.support).post(
        f"/requests/{request.pk}/comment/", {"body": "Asked the IdP team", "mode": "note"}
    )
    assert response.status_code == 302
    note = request.replies.get()
    assert feed.is_internal_note(note) and note.body == "Asked the IdP team"


# --- Replies to the customer ------------------------------------------------------------------


def test_reply_to_customer_is_mailed_threaded_and_recorded_in_the_thread(cast: Cast) -> None:
    request = _mailed_request(cast)
    feed.add_comment(
        actor=cast.support, parent=request, body="NOTE: refund them quietly", is_internal=True
    )
    mail.outbox.clear()
    reply = reply_to_customer(
        actor=cast.support, request=request, body="Hello Maria,\nfixed <now>; please retry."
    )
    assert (reply.kind, reply.parent_id, reply.author_id) == ("email", request.pk, cast.support.pk)
    assert reply.details["direction"] == "outbound" and reply.details["to"] == [CUSTOMER]
    assert reply.details["sent_at"] is None
    assert mail.outbox == []  # sent by the worker, after commit
    assert deliver_customer_reply(reply_id=reply.pk) is True
    assert deliver_customer_reply(reply_id=reply.pk) is False  # once
    [sent] = mail.outbox
    assert sent.to == [CUSTOMER]
    assert sent.from_email == '"carol via Support" <support@inbound.tidings.example>'
    assert sent.subject == "Re: Invoices will not download"
    assert sent.extra_headers["In-Reply-To"] == "<invoices-1@mail.acme.example>"
    assert sent.extra_headers["References"] == "<invoices-1@mail.acme.example>"
    assert "Auto-Submitted" not in sent.extra_headers  # a person wrote it: the customer may answer
    # Our Message-ID names the request (signed), so the customer's answer threads back onto it.
    assert activity_id_from_message_id(sent.extra_headers["Message-ID"]) == request.pk
    html, kind = sent.alternatives[0]  # type: ignore[misc]
    assert kind == "text/html" and "fixed &lt;now&gt;; please retry." in html
    assert "fixed <now>; please retry." in sent.body
    assert "error since Monday" in sent.body  # the customer's own message, quoted
    # The whole message as it leaves: no internal note anywhere in it.
    whole = sent.message().as_bytes()
    assert b"refund them quietly" not in whole and b"NOTE:" not in whole
    parsed = email.message_from_bytes(whole, policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    reply.refresh_from_db()
    assert reply.details["sent_at"] is not None


def test_the_customers_answer_to_our_reply_lands_in_the_request_thread(cast: Cast) -> None:
    request = _mailed_request(cast)
    reply = reply_to_customer(actor=cast.support, request=request, body="Please retry now.")
    deliver_customer_reply(reply_id=reply.pk)
    ours = reply.details["message_id"]
    answer = ingest(
        raw_email(
            subject="Re: Invoices will not download",
            body="Works now, thanks!",
            message_id="<invoices-2@mail.acme.example>",
            in_reply_to=f"<{ours}>",
            references=f"<invoices-1@mail.acme.example> <{ours}>",
            date=timezone.now(),
        )
    )
    assert answer.status == InboundEmail.Status.PROCESSED and answer.matched_by == "thread"
    assert answer.activity is not None and answer.activity.parent_id == request.pk
    # A second reply answers the newest customer message and lists the whole conversation.
    second = reply_to_customer(actor=cast.support, request=request, body="Great, closing it.")
    assert second.details["in_reply_to"] == ["invoices-2@mail.acme.example"]
    assert second.details["references"] == [
        "invoices-1@mail.acme.example",
        ours,
        "invoices-2@mail.acme.example",
    ]
    assert second.details["message_id"] != ours


def test_only_people_who_work_requests_reply_to_customers(cast: Cast) -> None:
    request = _mailed_request(cast)
    with pytest.raises(PermissionDenied):
        reply_to_customer(actor=cast.owner, request=request, body="Hi from sales")
    response = _page(cast.owner).post(
        f"/requests/{request.pk}/comment/", {"body": "Hi from sales", "mode": "customer"}
    )
    assert response.status_code == 302
    assert not Activity.objects.filter(kind="email", parent=request).exists()
    # The rep's page offers a note only; the support agent's offers the reply to Maria too.
    rep_page = _page(cast.owner).get(f"/requests/{request.pk}/").content.decode()
    assert 'value="customer"' not in rep_page and 'value="note"' in rep_page
    support_page = _page(cast.support).get(f"/requests/{request.pk}/").content.decode()
    assert f"Email reply to {CUSTOMER}" in support_page
    # The assignee replies too, whatever their role.
    feed.update_request(actor=cast.support, request=request, assignee=cast.manager)
    assert reply_to_customer(actor=cast.manager, request=request, body="Hello").kind == "email"


def test_reply_to_customer_needs_a_request_raised_by_email(cast: Cast) -> None:
    request = feed.raise_request(actor=cast.owner, account=cast.account, subject="Login fails")
    with pytest.raises(ValidationError, match="raised in Tidings"):
        reply_to_customer(actor=cast.support, request=request, body="Hello")
    post = feed.post_activity(author=cast.owner, account=cast.account, body="Plan?")
    with pytest.raises(ValidationError):
        reply_to_customer(actor=cast.support, request=post, body="Hello")
    mailed = _mailed_request(cast)
    with pytest.raises(ValidationError):
        reply_to_customer(actor=cast.support, request=mailed, body="   ")
    response = _page(cast.support).post(
        f"/requests/{request.pk}/comment/", {"body": "Hello", "mode": "customer"}, follow=True
    )
    assert "raised in Tidings" in response.content.decode()


def test_request_page_sends_a_reply_to_the_customer(cast: Cast) -> None:
    request = _mailed_request(cast)
    response = _page(cast.support).post(
        f"/requests/{request.pk}/comment/", {"body": "We are on it.", "mode": "customer"}
    )
    assert response.status_code == 302
    reply = Activity.objects.get(kind="email", parent=request)
    assert reply.details["direction"] == "outbound"
    page = _page(cast.owner).get(f"/requests/{request.pk}/").content.decode()
    assert "Email to customer" in page and f"To {CUSTOMER}" in page
    assert f"Raised by email from {CUSTOMER}" in page and f"{CUSTOMER} raised it by email" in page


def test_unsent_replies_are_swept_out_once(cast: Cast) -> None:
    request = _mailed_request(cast)
    reply = reply_to_customer(actor=cast.support, request=request, body="Please retry now.")
    mail.outbox.clear()
    assert deliver_pending_customer_replies(older_than=-1) == 1
    assert deliver_pending_customer_replies(older_than=-1) == 0
    assert [m.to for m in mail.outbox] == [[CUSTOMER]]
    reply.refresh_from_db()
    assert reply.details["sent_at"]


def test_a_reply_to_the_customer_counts_as_the_agents_email_and_touches_the_account(
    cast: Cast,
) -> None:
    request = _mailed_request(cast)
    reply = reply_to_customer(actor=cast.support, request=request, body="On it.")
    data = client_for(cast.owner).get(f"/api/v1/activities/{reply.pk}/").json()
    assert data["kind"] == "email" and data["author"]["username"] == "carol"
    assert data["internal"] is False and data["details"]["direction"] == "outbound"


def test_a_third_party_in_the_thread_does_not_become_the_customer(cast: Cast) -> None:
    """Maria raised the request; our reply was forwarded to a colleague of hers, who answers it.
    The agent's next reply (to Maria, as the page says) goes to Maria and answers Maria."""
    request = _mailed_request(cast)
    first = reply_to_customer(actor=cast.support, request=request, body="Please retry now.")
    ours = first.details["message_id"]
    colleague = ingest(
        raw_email(
            sender="Tom Reyes <tom@partner.example>",
            subject="Re: Invoices will not download",
            body="Same here, by the way.",
            message_id="<tom-1@partner.example>",
            in_reply_to=f"<{ours}>",
            references=f"<invoices-1@mail.acme.example> <{ours}>",
            date=timezone.now(),
        )
    )
    assert colleague.activity is not None and colleague.activity.parent_id == request.pk
    reply = reply_to_customer(actor=cast.support, request=request, body="Fixed, please retry.")
    assert reply.details["to"] == [CUSTOMER]
    assert reply.details["in_reply_to"] == ["invoices-1@mail.acme.example"]


def test_a_request_moved_to_its_right_account_can_still_be_answered(cast: Cast) -> None:
    """The original email stays on the old account with its contact; the reply, on the new
    account, must not name a contact of another account."""
    request = _mailed_request(cast)
    feed.move_activity(actor=cast.admin, activity=request, to_account=cast.west_account)
    request.refresh_from_db()
    reply = reply_to_customer(actor=cast.admin, request=request, body="Answering from West.")
    assert reply.account_id == cast.west_account.pk and reply.contact_id is None
    assert reply.details["to"] == [CUSTOMER]
