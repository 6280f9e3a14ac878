"""From raw bytes to the account's timeline: matching, threading, noise, attachments, invites."""

from __future__ import annotations

import datetime as dt

from django.test import Client

from crm import actions as crm_actions
from feed.models import Activity
from integrations import actions
from integrations.email.message_ids import message_id_for_activity
from integrations.models import InboundAttachment, InboundEmail, LoggingAddress
from tests.conftest import Cast
from tests.integrations.messages import email, ingest

Status = InboundEmail.Status


def test_mail_from_a_contact_lands_on_the_account_as_an_email(cast: Cast) -> None:
    inbound = ingest(email(message_id="<first@mail.acme.example>", html="<p>Hi <b>Alice</b></p>"))
    assert inbound.status == Status.PROCESSED, inbound.reason
    assert inbound.account == cast.account and inbound.matched_by == "contact"
    activity = inbound.activity
    assert activity is not None and activity.kind == Activity.Kind.EMAIL
    assert activity.account == cast.account and activity.author is None
    assert activity.subject == "Renewal questions"
    assert "renewal next week" in activity.body
    assert activity.details["from"] == "maria@acme.example"
    assert activity.details["from_name"] == "Maria Garcia"
    assert activity.details["to"] == ["alice@tidings.example"]
    assert activity.details["message_id"] == "first@mail.acme.example"
    assert activity.details["html"] == "<p>Hi <b>Alice</b></p>"
    assert activity.contact is not None and activity.contact.first_name == "Maria"


def test_a_reply_threads_onto_the_email_it_answers(cast: Cast) -> None:
    first = ingest(email(message_id="<one@mail.acme.example>"))
    reply = ingest(
        email(
            sender="someone@elsewhere.example",
            message_id="<two@elsewhere.example>",
            in_reply_to="<one@mail.acme.example>",
            references="<one@mail.acme.example>",
            body=(
                "Yes, Tuesday works.\n\n"
                "On Mon, Nov 2, 2026 at 10:00 AM Maria wrote:\n> Could we talk?\n"
            ),
        )
    )
    assert reply.status == Status.PROCESSED, reply.reason
    assert reply.matched_by == "thread" and reply.account == cast.account
    assert reply.activity is not None and first.activity is not None
    assert reply.activity.parent_id == first.activity.pk
    assert reply.activity.body == "Yes, Tuesday works."


def test_our_own_message_ids_in_references_thread_even_when_the_rest_is_rewritten(
    cast: Cast,
) -> None:
    post = Activity.objects.create(
        account=cast.account, kind="post", body="x", occurred_at=dt.datetime.now(dt.UTC)
    )
    ours = message_id_for_activity(post.pk)
    reply = ingest(
        email(sender="nobody@unknown.example", references=f"<rewritten@provider.example> {ours}")
    )
    assert reply.matched_by == "thread" and reply.activity is not None
    assert reply.activity.parent_id == post.pk


def test_a_forged_message_id_of_ours_does_not_thread(cast: Cast) -> None:
    post = Activity.objects.create(
        account=cast.account, kind="post", body="x", occurred_at=dt.datetime.now(dt.UTC)
    )
    forged = f"<tidings.a{post.pk}.00000000000000000000@inbound.tidings.example>"
    reply = ingest(email(sender="nobody@unknown.example", in_reply_to=forged))
    assert reply.status == Status.UNMATCHED


def test_the_logging_address_puts_mail_on_its_account_and_is_checked_when_processed(
    cast: Cast,
) -> None:
    address = actions.create_logging_address(actor=cast.owner, account=cast.account)
    assert len(address.token) >= 32  # 160 bits of base32
    inbound = ingest(
        email(sender="stranger@gmail.com", to="alice@tidings.example", cc=address.address)
    )
    assert inbound.matched_by == "logging-address" and inbound.account == cast.account
    LoggingAddress.objects.filter(pk=address.pk).update(revoked_at=dt.datetime.now(dt.UTC))
    later = ingest(email(sender="stranger@gmail.com", cc=address.address, subject="again"))
    assert later.status == Status.UNMATCHED


def test_unknown_senders_and_webmail_wait_in_triage(cast: Cast) -> None:
    crm_actions.add_account_domain(actor=cast.admin, account=cast.west_account, domain="gmail.com")
    inbound = ingest(email(sender="someone@gmail.com"))
    assert inbound.status == Status.UNMATCHED and inbound.reason
    assert inbound.activity is None and inbound.account is None


def test_auto_replies_and_bounces_are_kept_out_of_the_feed(cast: Cast) -> None:
    auto = ingest(email(headers={"Auto-Submitted": "auto-replied"}, subject="Out of office"))
    bulk = ingest(email(headers={"Precedence": "bulk"}))
    x_auto = ingest(email(headers={"X-Autoreply": "yes"}))
    bounce = ingest(email(sender="MAILER-DAEMON@mx.acme.example", subject="Undelivered"))
    for inbound in (auto, bulk, x_auto, bounce):
        assert inbound.status == Status.REJECTED and inbound.is_auto, inbound.reason
        assert inbound.activity is None
    assert not Activity.objects.filter(kind="email").exists()


def test_a_burst_from_one_sender_stops_reaching_the_feed(cast: Cast, settings: object) -> None:
    settings.TIDINGS_INBOUND_BURST_LIMIT = 3  # type: ignore[attr-defined]
    results = [ingest(email(subject=f"ticket {i}")) for i in range(5)]
    assert [r.status for r in results] == [Status.PROCESSED] * 3 + [Status.REJECTED] * 2
    assert "Burst" in results[-1].reason
    assert Activity.objects.filter(kind="email").count() == 3


def test_only_our_own_authentication_results_verify_a_sender(cast: Cast) -> None:
    trusted = (
        "mx.tidings.example; spf=pass smtp.mailfrom=acme.example; "
        "dmarc=pass header.from=acme.example"
    )
    forged = "evil.example; dmarc=pass header.from=acme.example"
    good = ingest(email(headers={"Authentication-Results": trusted}, subject="a"))
    spoof = ingest(email(headers={"Authentication-Results": forged}, subject="b"))
    failing = ingest(
        email(headers={"Authentication-Results": "mx.tidings.example; dmarc=fail"}, subject="c")
    )
    assert good.is_verified and good.activity.details["is_verified"]  # type: ignore[union-attr]
    assert not spoof.is_verified and not failing.is_verified


def test_attachments_are_typed_by_content_and_downloadable_only_with_access(cast: Cast) -> None:
    pdf = b"%PDF-1.4\n" + b"0" * 2000
    inbound = ingest(email(attachments=[("../../etc/quote.exe", "application/octet-stream", pdf)]))
    attachment = InboundAttachment.objects.get(inbound=inbound)
    assert attachment.content_type == "application/pdf"
    assert attachment.filename == "quote.exe"
    assert "quote" not in attachment.file.name and len(attachment.file.name) > 30
    url = f"/integrations/email/attachments/{attachment.pk}/"
    owner, outsider = Client(), Client()
    owner.force_login(cast.owner)
    outsider.force_login(cast.outsider)
    response = owner.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("attachment")
    assert b"".join(response.streaming_content) == pdf  # type: ignore[attr-defined]
    assert outsider.get(url).status_code == 404
    details = inbound.activity.details  # type: ignore[union-attr]
    assert details["attachments"][0]["id"] == attachment.pk


def test_attachments_follow_their_email_when_it_is_moved_or_deleted(cast: Cast) -> None:
    from feed import actions as feed_actions

    inbound = ingest(email(attachments=[("quote.pdf", "application/pdf", b"%PDF-1.4 q")]))
    url = f"/integrations/email/attachments/{InboundAttachment.objects.get().pk}/"
    owner, outsider = Client(), Client()
    owner.force_login(cast.owner)
    outsider.force_login(cast.outsider)
    assert inbound.activity is not None
    feed_actions.move_activity(
        actor=cast.admin, activity=inbound.activity, to_account=cast.west_account
    )
    assert owner.get(url).status_code == 404  # Acme's people no longer see it
    assert outsider.get(url).status_code == 200  # West's do
    feed_actions.delete_activity(actor=cast.admin, activity=inbound.activity)
    assert outsider.get(url).status_code == 404


INVITE = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Example//EN
METHOD:{method}
BEGIN:VEVENT
UID:kickoff-1@acme.example
SEQUENCE:{sequence}
DTSTART:20261201T150000Z
DTEND:20261201T160000Z
SUMMARY:{summary}
ORGANIZER;CN=Maria:mailto:maria@acme.example
ATTENDEE;CN=Alice:mailto:alice@tidings.example
ATTENDEE;CN=Erin:mailto:erin@tidings.example
ATTENDEE:mailto:guest@partner.example
END:VEVENT
END:VCALENDAR
"""


def test_an_invite_becomes_a_meeting_and_updates_and_cancellations_change_it(cast: Cast) -> None:
    cast.owner.email = "alice@tidings.example"
    cast.owner.save()
    cast.outsider.email = "erin@tidings.example"
    cast.outsider.save()
    first = ingest(email(calendar=INVITE.format(method="REQUEST", sequence=0, summary="Kickoff")))
    meeting = first.activity
    assert meeting is not None and meeting.kind == Activity.Kind.MEETING, first.reason
    assert meeting.starts_at == dt.datetime(2026, 12, 1, 15, tzinfo=dt.UTC)
    attendees = {(a.user_id, a.contact_id, a.email) for a in meeting.attendees.all()}
    maria = cast.account.contacts.get()
    # Erin cannot see the account: listed by address, never linked as a user.
    assert attendees == {
        (cast.owner.pk, None, ""),
        (None, maria.pk, ""),
        (None, None, "erin@tidings.example"),
        (None, None, "guest@partner.example"),
    }
    ingest(email(calendar=INVITE.format(method="REQUEST", sequence=1, summary="Kickoff v2")))
    ingest(email(calendar=INVITE.format(method="CANCEL", sequence=2, summary="Kickoff v2")))
    assert Activity.objects.filter(kind="meeting").count() == 1
    meeting.refresh_from_db()
    assert meeting.subject == "Cancelled: Kickoff v2" and meeting.details["is_cancelled"]


def test_the_logging_address_api_renews_and_the_old_address_stops_matching(cast: Cast) -> None:
    from tests.conftest import client_for

    client = client_for(cast.owner)
    url = f"/api/v1/accounts/{cast.account.pk}/logging-address/"
    assert client.get(url).json() == {"address": None}
    first = client.post(url).json()["address"]
    assert first.startswith("log+") and first.endswith("@inbound.tidings.example")
    assert client.get(url).json() == {"address": first}
    second = client.post(url).json()["address"]
    assert second != first
    assert ingest(email(sender="x@gmail.com", cc=second, subject="new")).status == "processed"
    assert ingest(email(sender="x@gmail.com", cc=first, subject="old")).status == "unmatched"
    assert client_for(cast.outsider).get(url).status_code == 404


def test_mail_to_the_support_address_raises_a_request_on_the_account(cast: Cast) -> None:
    inbound = ingest(
        email(
            to="Acme Support <support@inbound.tidings.example>",
            subject="Invoices will not download",
            body="Hello,\n\nThe invoice page shows an error since Monday.\n\nMaria",
        )
    )
    assert inbound.status == "processed" and inbound.account == cast.account
    request = Activity.objects.get(account=cast.account, kind="request")
    assert (request.subject, request.status, request.priority) == (
        "Invoices will not download",
        "open",
        "normal",
    )
    assert "error since Monday" in request.body
    assert request.details["email"] == inbound.activity_id and request.due_at is not None
    # A reply in the email's thread stays a reply; mail not to support raises nothing.
    ingest(email(subject="Thanks", message_id="<other@acme.example>"))
    assert Activity.objects.filter(kind="request").count() == 1


def test_an_inbound_email_shows_under_its_sender_on_the_page(cast: Cast) -> None:
    inbound = ingest(email())
    assert inbound.status == InboundEmail.Status.PROCESSED, inbound.reason
    client = Client()
    client.force_login(cast.owner)
    page = client.get(f"/accounts/{cast.account.pk}/").content.decode()
    assert '<strong class="activity-author">Maria Garcia</strong>' in page
    assert '<div class="avatar" aria-hidden="true">M</div>' in page
