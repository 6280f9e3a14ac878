"""Erasure and export of one person's data, seeded through the real write paths into every place
it can be, then looked for in every column of every table and every stored file."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from crm import actions as crm_actions
from crm.models import Contact, Lead
from feed import actions as feed_actions
from feed.models import Activity
from integrations import actions as inbound_actions
from integrations.models import InboundAttachment, InboundEmail
from notifications import actions as notification_actions
from privacy.actions import AUDIT_SUBJECT
from tests.conftest import Cast, client_for, work_happenings
from tests.integrations.messages import email, post_raw
from tests.privacy.scan import database_hits, file_hits, names_them

NAME, ADDRESS, OTHER_ADDRESS = "Ines Quillfeather", "ines@acme.example", "iq@quill.example"
PHONE = "+44 20 7946 0958"
# What names her wherever it is; her last name alone, only where the text is about her (the
# export finds those through her records, not by searching every table for a bare surname).
NAMING = [NAME, ADDRESS, OTHER_ADDRESS, PHONE]
TERMS = [*NAMING, "Quillfeather"]
INVITE = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Example//EN
METHOD:REQUEST
BEGIN:VEVENT
UID:review-7@acme.example
SEQUENCE:0
DTSTART:20261201T150000Z
DTEND:20261201T160000Z
SUMMARY:Contract review
ORGANIZER;CN=Ines Quillfeather:mailto:ines@acme.example
ATTENDEE;CN=Alice:mailto:alice@tidings.example
ATTENDEE;CN=Ines:mailto:iq@quill.example
END:VEVENT
END:VCALENDAR
"""


def _ingest(raw: bytes) -> InboundEmail:
    """Through the raw endpoint, then the worker task's action."""
    response = post_raw(Client(), raw)
    assert response.status_code == 202, response.content
    done = inbound_actions.process_inbound_email(inbound_id=response.json()["id"])
    assert done is not None
    return done


def _seed(cast: Cast) -> Contact:
    """Ines, spread over every place a person's data can be."""
    for user in (cast.owner, cast.teammate):
        user.email = f"{user.username}@tidings.example"
        user.save(update_fields=["email"])
    ines = crm_actions.create_contact(
        actor=cast.admin,
        account=cast.account,
        first_name="Ines",
        last_name="Quillfeather",
        title="Head of Procurement",
        phone=PHONE,
        emails=[ADDRESS, OTHER_ADDRESS],
    )
    mail = _ingest(
        email(
            sender=f"{NAME} <{ADDRESS}>",
            subject=f"Contract for {NAME}",
            body=f"Hi Alice,\n\nThe signed copy is attached; call me on {PHONE}.\n\nThanks, Ines",
            attachments=[
                (
                    "quillfeather-contract.pdf",
                    "application/pdf",
                    b"%PDF-1.4 signed by Ines Quillfeather",
                )
            ],
            message_id="<contract-1@mail.acme.example>",
        )
    )
    assert mail.status == "processed" and mail.attachments.count() == 1
    reply = _ingest(
        email(
            sender="Alice Moreau <alice@tidings.example>",
            to=f"Ines <{OTHER_ADDRESS}>",
            subject="Re: the contract",
            body="Dear Ines,\n\nThanks, received. Our legal team will answer by Friday.\n\nAlice",
            message_id="<reply-1@tidings.example>",
        )
    )
    assert reply.status == "processed"
    _ingest(email(sender=f"Ines <{ADDRESS}>", subject="Contract review", calendar=INVITE))
    unmatched = _ingest(email(sender=f"{NAME} <ines@personal.example>", subject="From home"))
    assert unmatched.status == "unmatched"
    inbound_actions.teach_rule(
        actor=cast.owner, account=cast.account, address=ADDRESS, scope="address"
    )
    feed_actions.log_meeting(
        actor=cast.owner,
        account=cast.account,
        subject="Pricing call",
        starts_at=timezone.now() - dt.timedelta(days=1),
        contacts=[ines],
        body="Ines asked for a 10% discount.",
        decisions=["Offer 5%"],
    )
    post = feed_actions.post_activity(
        author=cast.owner, account=cast.account, body=f"Met {NAME} ({ADDRESS}) today."
    )
    feed_actions.edit_activity(actor=cast.owner, activity=post, body="Met the buyer today.")
    feed_actions.create_task(
        actor=cast.owner, account=cast.account, subject=f"Call {NAME} back", assignee=cast.teammate
    )
    feed_actions.post_activity(
        author=cast.owner, account=cast.account, body=f"@bob {NAME} wants a call on {PHONE}"
    )
    work_happenings()
    assert notification_actions.flush_emails(timezone.now() + dt.timedelta(hours=1)) >= 1
    return ines


def _history() -> set[tuple[Any, ...]]:
    """What must survive: every activity's account, kind and times."""
    return set(
        Activity.objects.exclude(subject=AUDIT_SUBJECT).values_list(
            "pk", "account_id", "kind", "occurred_at", "parent_id", "deleted_at"
        )
    )


def _admin(cast: Cast) -> Any:
    return client_for(cast.admin)


def test_erasing_a_contact_leaves_nothing_of_them_and_keeps_the_history(
    cast: Cast, django_capture_on_commit_callbacks: Any, _mail_files: Path
) -> None:
    ines = _seed(cast)
    attachments = Path(settings.TIDINGS_ATTACHMENT_DIR)
    before = database_hits(TERMS)
    tables = {table for table, _, _ in before}
    assert {
        "crm_contactemail",
        "feed_activity",
        "feed_revision",
        "integrations_inboundemail",
        "integrations_inboundattachment",
        "integrations_inboundaddressrule",
        "notifications_notification",
        "realtime_event",
    } <= tables, tables
    assert file_hits(_mail_files, TERMS) and file_hits(attachments, TERMS)
    history = _history()
    per_account = {a: Activity.objects.filter(account_id=a).count() for a in (cast.account.pk,)}

    exported = _admin(cast).get(f"/api/v1/privacy/contacts/{ines.pk}/export/")
    assert exported.status_code == 200
    document = exported.json()
    found = {(o["table"], o["column"], str(o["row"])) for o in document["occurrences"]}
    assert database_hits(NAMING) <= found, database_hits(NAMING) - found
    bare = {hit for hit in before - database_hits(NAMING)}
    assert bare == {
        ("crm_contact", "last_name", str(ines.pk)),
        ("integrations_inboundattachment", "filename", str(InboundAttachment.objects.get().pk)),
    }
    assert document["record"]["last_name"] == "Quillfeather"
    assert "quillfeather-contract.pdf" in {
        a["filename"] for m in document["inbound_emails"] for a in m["attachments"]
    }
    assert {line["file"] for line in document["sent_mail"]} == file_hits(_mail_files, TERMS)
    assert document["record"]["phone"] == PHONE
    assert len(document["inbound_emails"]) == 4
    assert document["triage_rules"][0]["pattern"] == ADDRESS

    with django_capture_on_commit_callbacks(execute=True):
        erased = _admin(cast).post(
            f"/api/v1/privacy/contacts/{ines.pk}/erase/", {"confirm": True}, format="json"
        )
    assert erased.status_code == 200, erased.content
    assert erased.json()["status"] == "erased"

    assert database_hits(TERMS) == set()
    assert file_hits(_mail_files, TERMS) == set()
    assert file_hits(attachments, TERMS) == set()
    assert not InboundAttachment.objects.exists()
    assert _history() == history
    audit = Activity.objects.get(subject=AUDIT_SUBJECT)
    assert audit.kind == "system" and audit.account_id == cast.account.pk
    assert per_account[cast.account.pk] + 1 == Activity.objects.filter(account=cast.account).count()
    # The contact row stays, without anything personal; the stored messages keep their status.
    ines.refresh_from_db()
    assert (ines.full_name, ines.phone, ines.title) == (f"[erased contact {ines.pk}]", "", "")
    assert set(InboundEmail.objects.values_list("status", flat=True)) >= {"processed", "unmatched"}
    email_activity = Activity.objects.get(kind="email", subject__startswith="Contract for")
    assert email_activity.details["from"] == f"erased-contact-{ines.pk}@erased.invalid"
    assert email_activity.details["attachments_erased"] == 1
    assert "signed copy is attached" in email_activity.body  # the non-personal text stays


def test_a_stubbed_message_posted_again_is_still_a_duplicate(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    ines = _seed(cast)
    raw = email(sender=f"{NAME} <{ADDRESS}>", message_id="<contract-1@mail.acme.example>")
    with django_capture_on_commit_callbacks(execute=True):
        _admin(cast).post(
            f"/api/v1/privacy/contacts/{ines.pk}/erase/", {"confirm": True}, format="json"
        )
    again = post_raw(Client(), raw)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"


def test_a_second_erasure_says_it_was_done_already(cast: Cast) -> None:
    contact = cast.account.contacts.get()
    url = f"/api/v1/privacy/contacts/{contact.pk}/erase/"
    first = _admin(cast).post(url, {"confirm": True}, format="json")
    second = _admin(cast).post(url, {"confirm": True}, format="json")
    assert (first.json()["status"], second.json()["status"]) == ("erased", "already_erased")
    assert second.json()["counts"] == first.json()["counts"]
    assert Activity.objects.filter(subject=AUDIT_SUBJECT).count() == 1


def test_erasure_needs_a_confirmation(cast: Cast) -> None:
    contact = cast.account.contacts.get()
    response = _admin(cast).post(f"/api/v1/privacy/contacts/{contact.pk}/erase/", {}, format="json")
    assert response.status_code == 400 and "confirm" in response.json()
    assert Contact.objects.get(pk=contact.pk).first_name == "Maria"


def test_erasing_a_dead_lead_removes_it_and_every_trace(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    lead = crm_actions.create_lead(
        actor=cast.owner,
        first_name="Tobias",
        last_name="Wrenfield",
        company="Wrenfield Freight",
        email="tobias@wrenfield.example",
        phone="+1 415 555 0199",
        group=Lead.Group.DEAD,
        dead_reason="Unreachable",
    )
    terms = ["Tobias Wrenfield", "tobias@wrenfield.example", "+1 415 555 0199"]
    _ingest(email(sender="Tobias Wrenfield <tobias@wrenfield.example>", subject="Still there?"))
    assert database_hits(terms)
    with django_capture_on_commit_callbacks(execute=True):
        response = _admin(cast).post(
            f"/api/v1/privacy/leads/{lead.pk}/erase/", {"confirm": True}, format="json"
        )
    assert response.status_code == 200 and response.json()["status"] == "erased"
    assert not Lead.objects.filter(pk=lead.pk).exists()
    assert database_hits(terms) == set()
    again = _admin(cast).post(
        f"/api/v1/privacy/leads/{lead.pk}/erase/", {"confirm": True}, format="json"
    )
    assert again.status_code == 200 and again.json()["status"] == "already_erased"


def test_a_converted_lead_is_erased_from_the_history_of_its_conversion(cast: Cast) -> None:
    lead = crm_actions.create_lead(
        actor=cast.owner, first_name="Noor", last_name="Alimova", company="Bridge Peak"
    )
    account = feed_actions.convert_lead(actor=cast.owner, lead=lead)
    _admin(cast).post(f"/api/v1/privacy/leads/{lead.pk}/erase/", {"confirm": True}, format="json")
    conversion = Activity.objects.get(account=account, subject="Lead converted")
    assert "Noor Alimova" not in conversion.body and f"[erased lead {lead.pk}]" in conversion.body
    assert Activity.objects.filter(account=account, subject=AUDIT_SUBJECT).exists()


def test_a_lead_whose_account_was_merged_away_is_erased_with_the_audit_on_the_survivor(
    cast: Cast,
) -> None:
    lead = crm_actions.create_lead(
        actor=cast.owner, first_name="Noor", last_name="Alimova", company="Bridge Peak"
    )
    converted = feed_actions.convert_lead(actor=cast.owner, lead=lead)
    feed_actions.merge_accounts(actor=cast.admin, survivor=cast.account, loser=converted)
    url = f"/api/v1/privacy/leads/{lead.pk}/erase/"
    response = _admin(cast).post(url, {"confirm": True}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "erased"
    assert not Lead.objects.filter(pk=lead.pk).exists()
    assert Activity.objects.filter(account=cast.account, subject=AUDIT_SUBJECT).exists()


@pytest.mark.parametrize("kind", ["contacts", "leads"])
@pytest.mark.parametrize("action", ["export", "erase"])
def test_only_administrators_reach_privacy(cast: Cast, kind: str, action: str) -> None:
    lead = crm_actions.create_lead(actor=cast.owner, first_name="Z", company="Z Co")
    pk = cast.account.contacts.get().pk if kind == "contacts" else lead.pk
    url = f"/api/v1/privacy/{kind}/{pk}/{action}/"
    method = "GET" if action == "export" else "POST"
    body = json.dumps({"confirm": True}) if method == "POST" else ""
    anonymous = Client().generic(method, url, body, content_type="application/json")
    assert anonymous.status_code in (401, 403)
    for user in (cast.owner, cast.manager, cast.support):
        client = client_for(user)
        answer = client.generic(method, url, body, content_type="application/json")
        missing = client.generic(
            method,
            f"/api/v1/privacy/{kind}/999999/{action}/",
            body,
            content_type="application/json",
        )
        assert answer.status_code == missing.status_code == 404
        assert answer.content == missing.content
    assert Contact.objects.get(pk=cast.account.contacts.get().pk).first_name == "Maria"
    assert Lead.objects.filter(pk=lead.pk).exists()


def test_names_them_sees_a_phone_number_however_it_is_written() -> None:
    assert names_them("call +44 (20) 7946-0958", [PHONE])
    assert not names_them("call +44 20 7946 0959", [PHONE])


def test_a_name_with_accents_and_an_apostrophe_is_found_in_every_copy(
    cast: Cast, django_capture_on_commit_callbacks: Any, _mail_files: Path
) -> None:
    """Non-ASCII in JSON (which SQLite stores escaped) and the HTML escape of the apostrophe in
    the emails' HTML part."""
    cast.teammate.email = "bob@tidings.example"
    cast.teammate.save(update_fields=["email"])
    name = "Inés O'Ødegård"
    contact = crm_actions.create_contact(
        actor=cast.admin, account=cast.account, first_name="Inés", last_name="O'Ødegård"
    )
    feed_actions.log_meeting(
        actor=cast.owner,
        account=cast.account,
        subject="Site visit",
        starts_at=timezone.now(),
        contacts=[contact],
    )
    feed_actions.post_activity(author=cast.owner, account=cast.account, body=f"@bob {name} called")
    work_happenings()
    notification_actions.flush_emails(timezone.now() + dt.timedelta(hours=1))
    terms = [name, "O&#x27;Ødegård", "Ødegård"]
    assert database_hits(terms) and file_hits(_mail_files, terms)
    with django_capture_on_commit_callbacks(execute=True):
        _admin(cast).post(
            f"/api/v1/privacy/contacts/{contact.pk}/erase/", {"confirm": True}, format="json"
        )
    assert database_hits(terms) == set()
    assert file_hits(_mail_files, terms) == set()


def test_erasure_tells_live_subscribers_what_changed_and_nothing_else(cast: Cast) -> None:
    from feed.events import account_stream, team_stream
    from realtime.models import Event

    maria = cast.account.contacts.get()
    call = feed_actions.log_call(
        actor=cast.owner, account=cast.account, contact=maria, body="Maria Garcia liked the demo"
    )
    feed_actions.post_activity(author=cast.owner, account=cast.account, body="unrelated")
    hidden = feed_actions.log_call(
        actor=cast.owner, account=cast.account, contact=maria, body="Maria Garcia, wrong number"
    )
    feed_actions.delete_activity(actor=cast.owner, activity=hidden)
    last = Event.objects.order_by("-id").values_list("id", flat=True).first()
    _admin(cast).post(
        f"/api/v1/privacy/contacts/{maria.pk}/erase/", {"confirm": True}, format="json"
    )
    audit = Activity.objects.get(subject=AUDIT_SUBJECT)
    recorded = [
        (e.type, e.stream, e.data["id"]) for e in Event.objects.filter(id__gt=last).order_by("id")
    ]
    assert recorded == [
        ("activity.updated", account_stream(cast.account.pk), call.pk),
        ("activity.updated", team_stream(cast.east.pk), call.pk),
        ("activity.created", account_stream(cast.account.pk), audit.pk),
    ]
    assert "Maria Garcia" not in json.dumps([e.data for e in Event.objects.all()])
    hidden.refresh_from_db()  # redacted, and not shown again to anyone
    assert hidden.body == f"[erased contact {maria.pk}], wrong number"
