"""Erasure of one person's data, a contact's or a lead's (docs/privacy.md).

Each erasure is one transaction: the places that need a decision are changed by name (the
contact row, the stored raw messages, attachments, address rules, meeting attendees, the
person's own activities, where a first name alone is theirs too), then `privacy.catalog.sweep`
replaces every remaining name, address and phone number in every text column of every table.
Files (attachments, stored sent emails) change after commit. Non-personal history stays: every
activity keeps its account, kind, time and the text that is not about the person.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.models import Contact, Lead, User
from feed import actions as feed_actions
from feed import events
from feed.models import Activity, Attendee, Revision
from integrations.models import InboundAttachment, InboundEmail
from notifications.models import Notification
from privacy import catalog, queries
from privacy.files import delete_attachment_files, redact_mail_files
from privacy.models import Erasure
from privacy.redaction import Person, Redactor
from realtime.models import Event

AUDIT_SUBJECT = "Personal data erased"


@dataclass(frozen=True)
class Erased:
    erasure: Erasure
    # False when it had been erased before: nothing was done this time.
    is_new: bool


def erase_contact(*, actor: User, contact_id: int) -> Erased:
    """Erase the contact's personal data everywhere, keeping the (redacted) contact row so that
    the history pointing at it keeps its shape. Administrators only (others: AccountNotFound)."""
    contact = queries.get_erasable_contact(actor, contact_id)
    done = queries.erasure_of("contact", contact.pk)
    if done is not None:
        return Erased(done, is_new=False)
    return _erase(actor, "contact", contact.pk)


def erase_lead(*, actor: User, lead_id: int) -> Erased:
    """Erase the lead's personal data everywhere and delete the lead: the only way a lead, dead
    or not, goes away. A converted lead's contact is a record of its own, erased on its own."""
    queries.require_admin(actor)
    done = queries.erasure_of("lead", lead_id)
    if done is not None:
        return Erased(done, is_new=False)
    lead = queries.get_erasable_lead(actor, lead_id)
    return _erase(actor, "lead", lead.pk)


def _erase(actor: User, kind: str, pk: int) -> Erased:
    try:
        with transaction.atomic():
            return Erased(_erase_locked(actor, kind, pk), is_new=True)
    except (IntegrityError, Contact.DoesNotExist, Lead.DoesNotExist):
        # A concurrent erasure of the same person committed first: the unique constraint, or
        # the lead it deleted while this one waited for the lock.
        done = queries.erasure_of(kind, pk)
        if done is None:
            raise
        return Erased(done, is_new=False)


def _erase_locked(actor: User, kind: str, pk: int) -> Erasure:
    model: type[Contact] | type[Lead] = Contact if kind == "contact" else Lead
    record = model.objects.select_for_update().get(pk=pk)
    person = queries.person_of(record)
    about = list(queries.activities_about(person).values_list("pk", flat=True))
    # Attachments first: which are theirs is read from the sender of messages not yet stubbed.
    listing = _delete_attachments(person)
    counts = {"attachments": len(listing), "stored messages": _stub_inbound_emails(person)}
    counts["address rules"] = queries.address_rules_of(person).delete()[0]
    counts["attendees"] = _redact_attendees(person)
    redacted = _redact_activities(person, about)
    counts["activities about them"] = len(redacted)
    account_id = _redact_record(record)
    counts["the record itself"] = 1
    swept = catalog.sweep(person)
    counts |= {f"rows in {table}": len(set(pks)) for table, pks in swept.items()}
    changed = {*redacted, *swept.get("feed_activity", [])}
    changed |= {pk for pk in listing.values() if pk is not None}
    # A hidden (deleted) activity stays hidden: subscribers hear only of what they can see.
    for activity in Activity.objects.filter(pk__in=changed, deleted_at__isnull=True):
        events.activity_updated(activity)
    erasure = Erasure.objects.create(
        kind=kind, subject_id=pk, actor=actor, erased_at=timezone.now(), counts=counts
    )
    if account_id is not None:
        _audit(actor, account_id, person, erasure)
    transaction.on_commit(partial(redact_mail_files, person))
    return erasure


def _stub_raw(inbound: InboundEmail, person: Person) -> bytes:
    """What is kept of a stored message: enough to say what it was, nothing of its content.

    The row keeps its status, Message-ID and the hash of the original bytes, so a redelivery of
    the same message is still recognised as a duplicate and never posted again.
    """
    key = hashlib.sha256(inbound.message_id.encode()).hexdigest() if inbound.message_id else ""
    lines = [
        f"X-Tidings-Erased: personal data of {person.placeholder} erased",
        f"X-Tidings-Message-ID-SHA256: {key}",
        "Subject: [erased]",
        "",
        "This message named a person whose data was erased at their request.",
        "",
    ]
    return "\r\n".join(lines).encode()


def _stub_inbound_emails(person: Person) -> int:
    redactor = Redactor(person)
    stubbed = 0
    for inbound in queries.inbound_emails_of(person).select_for_update().defer("raw"):
        stub = _stub_raw(inbound, person)
        InboundEmail.objects.filter(pk=inbound.pk).update(
            raw=stub,
            size=len(stub),
            from_address=redactor.text(inbound.from_address),
            subject=redactor.text(inbound.subject),
            participants=redactor.text(inbound.participants),
        )
        stubbed += 1
    return stubbed


def _delete_attachments(person: Person) -> dict[int, int | None]:
    """Attachments the person sent go, rows now and files after commit; the emails that listed
    them say how many were erased instead. Answers {attachment id: the activity listing it}."""
    attachments = list(queries.attachments_of(person))
    if not attachments:
        return {}
    gone = {a.pk for a in attachments}
    names = [a.file.name for a in attachments]
    listing = {a.inbound.activity_id for a in attachments}
    InboundAttachment.objects.filter(pk__in=gone).delete()
    transaction.on_commit(partial(delete_attachment_files, names))
    for activity in Activity.objects.filter(pk__in=listing).select_for_update():
        listed = activity.details.get("attachments") or []
        kept = [a for a in listed if a.get("id") not in gone]
        if len(kept) != len(listed):
            activity.details = activity.details | {
                "attachments": kept,
                "attachments_erased": len(listed) - len(kept),
            }
            activity.save(update_fields=["details"])
    return {a.pk: a.inbound.activity_id for a in attachments}


def _redact_attendees(person: Person) -> int:
    """A contact stays an attendee (as the redacted contact); a bare address of theirs goes."""
    if not person.addresses:
        return 0
    rows = Attendee.objects.filter(email__in=person.addresses)
    if person.kind == "contact":
        return rows.update(contact_id=person.pk, email="")
    return rows.delete()[0]


def _redact_activities(person: Person, about: list[int]) -> list[int]:
    """The person's own activities, their revisions, the notifications and outbox events about
    them: a first or last name alone is theirs here ("Thanks, Maria")."""
    redactor = Redactor(person, about=True)
    changed = []
    for activity in Activity.objects.filter(pk__in=about).select_for_update():
        values = {
            "subject": redactor.text(activity.subject),
            "body": redactor.text(activity.body),
            "details": redactor.json(activity.details),
        }
        if values != {n: getattr(activity, n) for n in values}:
            Activity.objects.filter(pk=activity.pk).update(**values)
            changed.append(activity.pk)
    for revision in Revision.objects.filter(activity_id__in=about):
        Revision.objects.filter(pk=revision.pk).update(
            subject=redactor.text(revision.subject), body=redactor.text(revision.body)
        )
    for notification in Notification.objects.filter(activity_id__in=about):
        title = redactor.text(notification.title)
        if title != notification.title:
            Notification.objects.filter(pk=notification.pk).update(title=title[:300])
    # Activity events carry the activity's JSON (feed.events), its id at the top.
    activity_events = Event.objects.filter(type__startswith="activity.", data__id__in=about)
    for event in activity_events.select_for_update():
        data = redactor.json(event.data)
        if data != event.data:
            Event.objects.filter(pk=event.pk).update(data=data)
    return changed


def _redact_record(record: Contact | Lead) -> int | None:
    """The record itself: a contact keeps a row without personal fields, a lead is deleted.
    Answers the account the erasure is recorded on (None for a lead never converted)."""
    if isinstance(record, Contact):
        record.emails.all().delete()
        record.first_name, record.last_name = f"[erased contact {record.pk}]", ""
        record.title, record.phone = "", ""
        record.save(update_fields=["first_name", "last_name", "title", "phone"])
        return record.account_id
    account_id = record.converted_account_id
    record.delete()
    return account_id


def _audit(actor: User, account_id: int, person: Person, erasure: Erasure) -> Any:
    """The `system` entry on the person's account — on the survivor when that account was merged
    away. An archived account takes no new entries: the `Erasure` row is then the only audit
    (a failed audit entry must not undo the erasure)."""
    from crm.queries import merged_survivor_id
    from crm.visibility import live_accounts

    for _ in range(20):  # merges chain (A into B, B into C); never loop on bad data
        survivor = merged_survivor_id(account_id)
        if survivor is None:
            break
        account_id = survivor
    account = live_accounts().filter(pk=account_id).first()
    if account is None:
        return None
    return feed_actions.log_activity(
        actor=actor,
        account=account,
        kind=Activity.Kind.SYSTEM,
        subject=AUDIT_SUBJECT,
        body=(
            f"The personal data of {person.placeholder} was erased on request by "
            f"{actor.display_name}. The history stays, with names, addresses and phone numbers "
            "replaced."
        ),
        details={"erasure": erasure.pk, "kind": person.kind, "id": person.pk},
    )
