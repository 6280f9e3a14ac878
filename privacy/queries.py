"""Reads of privacy: whose data may be exported or erased, where it is, and the export itself.

Only administrators export or erase; to anyone else every contact and lead here is "not found",
exactly like one that does not exist.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from crm.models import Contact, Lead
from crm.visibility import AccountNotFound
from feed.models import Activity, Attendee
from feed.serializers import activity_json
from integrations.models import InboundAddressRule, InboundEmail
from privacy import catalog
from privacy.files import mail_file_lines
from privacy.models import Erasure
from privacy.redaction import Person, person_named


def require_admin(user: Any) -> None:
    if not (getattr(user, "is_authenticated", False) and getattr(user, "is_admin", False)):
        raise AccountNotFound()


def get_erasable_contact(user: Any, contact_id: int) -> Contact:
    """The contact, for an administrator; raises AccountNotFound (404) otherwise."""
    require_admin(user)
    contact = Contact.objects.select_related("account").filter(pk=contact_id).first()
    if contact is None:
        raise AccountNotFound()
    return contact


def get_erasable_lead(user: Any, lead_id: int) -> Lead:
    """The lead, for an administrator; raises AccountNotFound (404) otherwise, also for a lead
    erased already (it is gone)."""
    require_admin(user)
    lead = Lead.objects.filter(pk=lead_id).first()
    if lead is None:
        raise AccountNotFound()
    return lead


def erasure_of(kind: str, pk: int) -> Erasure | None:
    return Erasure.objects.filter(kind=kind, subject_id=pk).first()


def person_of(record: Contact | Lead) -> Person:
    """The personal data of a contact (all its addresses) or a lead."""
    if isinstance(record, Contact):
        kind, addresses = "contact", list(record.emails.values_list("address", flat=True))
    else:
        kind, addresses = "lead", [record.email]
    return person_named(
        kind=kind,
        pk=record.pk,
        first_name=record.first_name,
        last_name=record.last_name,
        addresses=addresses,
        phones=[record.phone],
    )


def _names_addresses(person: Person) -> Q:
    """Activities whose subject, body or headers carry one of the person's addresses."""
    pattern = person.address_pattern
    if not pattern:
        return Q(pk__in=[])
    return Q(subject__iregex=pattern) | Q(body__iregex=pattern) | Q(details_text__iregex=pattern)


def activities_about(person: Person) -> QuerySet[Activity]:
    """The person's own activities: about the contact, with them as sender, recipient or
    attendee, or naming one of their addresses; for a lead, also the record of its conversion."""
    from django.db.models import TextField
    from django.db.models.functions import Cast

    condition = _names_addresses(person)
    if person.kind == "contact":
        condition |= Q(contact_id=person.pk) | Q(attendees__contact_id=person.pk)
    else:
        condition |= Q(kind=Activity.Kind.SYSTEM, details__lead=person.pk)
    if person.addresses:
        condition |= Q(attendees__email__in=person.addresses)
    ids = (
        Activity.objects.annotate(details_text=Cast("details", TextField()))
        .filter(condition)
        .values("pk")
    )
    return Activity.objects.filter(pk__in=ids).order_by("occurred_at", "pk")


def inbound_emails_of(person: Person) -> QuerySet[InboundEmail]:
    """Stored messages that name the person: from, to or cc them, on their activities, or with
    one of their addresses or names anywhere in the raw bytes."""
    raw = catalog.Column(InboundEmail, InboundEmail._meta.get_field("raw"))
    condition = Q(pk__in=catalog.matching_rows(raw, person).values("pk"))
    condition |= Q(activity__in=activities_about(person))
    for address in person.addresses:
        condition |= Q(from_address__iexact=address) | Q(participants__icontains=f" {address} ")
    return InboundEmail.objects.filter(condition).order_by("received_at", "pk")


def address_rules_of(person: Person) -> QuerySet[InboundAddressRule]:
    return InboundAddressRule.objects.filter(pattern__in=person.addresses).order_by("pk")


def _activity_export(activity: Activity) -> dict[str, Any]:
    data = activity_json(activity)
    data["revisions"] = [
        {"subject": r.subject, "body": r.body, "edited_at": r.edited_at.isoformat()}
        for r in activity.revisions.all()
    ]
    data["attendees"] = [
        {"user": a.user_id, "contact": a.contact_id, "email": a.email}
        for a in activity.attendees.all()
    ]
    return data


def _inbound_export(inbound: InboundEmail, person: Person) -> dict[str, Any]:
    sent_by_them = inbound.from_address.lower() in person.addresses
    return {
        "id": inbound.pk,
        "status": inbound.status,
        "received_at": inbound.received_at.isoformat(),
        "message_id": inbound.message_id,
        "from": inbound.from_address,
        "subject": inbound.subject,
        "account": inbound.account_id,
        "activity": inbound.activity_id,
        "sent_by_them": sent_by_them,
        "raw": inbound.raw_bytes.decode("utf-8", "replace"),
        "attachments": [
            {
                "id": a.pk,
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
            }
            for a in inbound.attachments.all()
        ],
    }


def _record_export(person: Person, record: Contact | Lead) -> dict[str, Any]:
    fields = {
        "kind": person.kind,
        "id": record.pk,
        "first_name": record.first_name,
        "last_name": record.last_name,
        "phone": record.phone,
        "created_at": record.created_at.isoformat(),
    }
    if isinstance(record, Contact):
        fields |= {
            "title": record.title,
            "account": record.account_id,
            "emails": [
                {"address": e.address, "is_primary": e.is_primary} for e in record.emails.all()
            ],
        }
    else:
        fields |= {
            "company": record.company,
            "email": record.email,
            "group": record.group,
            "dead_reason": record.dead_reason,
            "owner": record.owner_id,
            "converted_account": record.converted_account_id,
        }
    return fields


def export(person: Person, record: Contact | Lead) -> dict[str, Any]:
    """Everything stored about `person` as one JSON document.

    `occurrences` lists every text, JSON or raw value of every table that names them (found
    through the installed models), so nothing the structured parts leave out is missed;
    `sent_mail` the lines of stored sent emails that do.
    """
    activities = activities_about(person).select_related("author", "assignee")
    inbound = inbound_emails_of(person).prefetch_related("attachments")
    return {
        "exported_at": timezone.now().isoformat(),
        "erasure": _erasure_export(erasure_of(person.kind, person.pk)),
        "record": _record_export(person, record),
        "activities": [
            _activity_export(a)
            for a in activities.prefetch_related("revisions", "attendees").iterator(500)
        ],
        "meetings_attended": list(
            Attendee.objects.filter(_attendee_condition(person))
            .values_list("activity_id", flat=True)
            .order_by("activity_id")
        ),
        "inbound_emails": [_inbound_export(m, person) for m in inbound.iterator(100)],
        "triage_rules": [
            {"pattern": r.pattern, "account": r.account_id, "created_at": r.created_at.isoformat()}
            for r in address_rules_of(person)
        ],
        "occurrences": [o.as_json() for o in catalog.occurrences(person)],
        "sent_mail": mail_file_lines(person),
    }


def _attendee_condition(person: Person) -> Q:
    condition = Q(email__in=person.addresses) if person.addresses else Q(pk__in=[])
    if person.kind == "contact":
        condition |= Q(contact_id=person.pk)
    return condition


def _erasure_export(erasure: Erasure | None) -> dict[str, Any] | None:
    if erasure is None:
        return None
    return {"erased_at": erasure.erased_at.isoformat(), "counts": erasure.counts}


def attachments_of(person: Person) -> QuerySet[Any]:
    """Attachments of messages the person sent (what the export's zip carries)."""
    from integrations.models import InboundAttachment

    senders = Q()
    for address in person.addresses:
        senders |= Q(inbound__from_address__iexact=address)
    if not person.addresses:
        return InboundAttachment.objects.none()
    return InboundAttachment.objects.filter(senders).select_related("inbound").order_by("pk")
