"""Email and calendar meetings that arrive from outside, recorded by the system on an account.

The callers (integrations) decide which account; these actions only write the history and announce
it, like every other action of the feed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm.models import Account, Contact, User
from feed import events, happenings
from feed.actions.activities import clean_text, log_activity
from feed.actions.touches import note_touches
from feed.models import Activity, Attendee
from feed.serializers import POST_MAX_CHARS, SUBJECT_MAX_CHARS


def _fit(text: str, limit: int) -> str:
    text = text.replace("\x00", "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def log_email(
    *,
    account: Account,
    subject: str,
    body: str,
    details: dict[str, Any],
    occurred_at: dt.datetime | None = None,
    parent: Activity | None = None,
    contact: Contact | None = None,
) -> Activity:
    """An email on `account`'s timeline, in the thread of `parent` when it answers one.

    `details` carries from/to/cc, the Message-ID, the sanitized HTML and the attachments; the
    author is the system (None), the people are in `details`. One write (`log_activity`, atomic
    itself): no transaction of its own, which would cost the inbound worker two savepoints.
    """
    return log_activity(
        actor=None,
        account=account,
        kind=Activity.Kind.EMAIL,
        subject=clean_text(_fit(subject, SUBJECT_MAX_CHARS), required=False),
        body=clean_text(_fit(body, POST_MAX_CHARS), required=False),
        details=details,
        occurred_at=min(occurred_at or timezone.now(), timezone.now()),
        parent=parent,
        contact=contact,
    )


@dataclass
class NewEmail:
    """One email of `log_emails`, with the same meaning as `log_email`'s arguments."""

    account: Account
    subject: str
    body: str
    details: dict[str, Any] = field(default_factory=dict)
    occurred_at: dt.datetime | None = None
    parent: Activity | None = None
    contact: Contact | None = None


def log_emails(emails: list[NewEmail]) -> list[Activity]:
    """`log_email` for many emails in the caller's transaction, in order: one INSERT of the
    activities, one of their events, one of their happenings (the inbound worker's batches).

    Raises ValidationError, before writing anything, when a parent or contact is on another
    account. The caller must hold a transaction (the events need it).
    """
    now = timezone.now()
    rows = []
    for email in emails:
        if email.parent is not None and email.parent.account_id != email.account.pk:
            raise ValidationError("A reply must be on the same account as its thread.")
        if email.contact is not None and email.contact.account_id != email.account.pk:
            raise ValidationError("That contact belongs to another account.")
        rows.append(
            Activity(
                account=email.account,
                kind=Activity.Kind.EMAIL,
                author=None,
                subject=clean_text(_fit(email.subject, SUBJECT_MAX_CHARS), required=False),
                body=clean_text(_fit(email.body, POST_MAX_CHARS), required=False),
                details=email.details,
                occurred_at=min(email.occurred_at or now, now),
                parent=email.parent,
                contact=email.contact,
            )
        )
    activities = Activity.objects.bulk_create(rows)
    latest: dict[int, dt.datetime] = {}
    for activity in activities:
        latest[activity.account_id] = max(
            latest.get(activity.account_id, activity.occurred_at), activity.occurred_at
        )
    note_touches(latest)
    events.activities_created(activities)
    happenings.announce_many(
        [happenings.Happening(happenings.CREATED, a, None) for a in activities]
    )
    return activities


@transaction.atomic
def record_invited_meeting(
    *,
    account: Account,
    uid: str,
    sequence: int,
    subject: str,
    starts_at: dt.datetime,
    ends_at: dt.datetime | None,
    body: str = "",
    users: list[User] = (),  # type: ignore[assignment]
    contacts: list[Contact] = (),  # type: ignore[assignment]
    emails: list[str] = (),  # type: ignore[assignment]
    is_cancelled: bool = False,
    source: dict[str, Any] | None = None,
) -> Activity:
    """The meeting of calendar invite `uid` on `account`: created by the first invite, changed by
    later ones (updates, cancellations) and left alone by one older than what it already shows.
    """
    meeting = (
        Activity.objects.select_for_update()
        .filter(account=account, kind=Activity.Kind.MEETING, details__ical_uid=uid)
        .first()
    )
    if meeting is not None and sequence < int(meeting.details.get("ical_sequence", 0)):
        return meeting
    shown = [{"user": u.pk, "name": u.display_name} for u in users]
    shown += [{"contact": c.pk, "name": c.full_name} for c in contacts]
    shown += [{"email": e, "name": e} for e in emails]
    details = {
        "attendees": shown,
        "ical_uid": uid,
        "ical_sequence": sequence,
        "is_cancelled": is_cancelled,
        **(source or {}),
    }
    fields: dict[str, Any] = {
        "subject": _fit(("Cancelled: " if is_cancelled else "") + subject, SUBJECT_MAX_CHARS),
        "body": _fit(body.replace("\x00", ""), POST_MAX_CHARS),
        "starts_at": starts_at,
        "ends_at": ends_at,
    }
    if meeting is None:
        meeting = log_activity(
            actor=None,
            account=account,
            kind=Activity.Kind.MEETING,
            occurred_at=min(starts_at, timezone.now()),
            details=details,
            **fields,
        )
    else:
        for name, value in fields.items():
            setattr(meeting, name, value)
        meeting.details = {**meeting.details, **details}
        meeting.save(update_fields=[*fields, "details"])
        meeting.attendees.all().delete()
        events.activity_updated(meeting)
    Attendee.objects.bulk_create(
        [Attendee(activity=meeting, user=u) for u in users]
        + [Attendee(activity=meeting, contact=c) for c in contacts]
        + [Attendee(activity=meeting, email=e) for e in emails[:200]]
    )
    return meeting
