"""Recording activities of every kind on an account's timeline."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm.models import Account, Contact, User
from crm.sqlrows import insert_instances
from crm.visibility import require_visible_account
from feed import events, happenings
from feed.actions.touches import is_customer_facing, note_touch
from feed.models import Activity, Attendee
from feed.serializers import POST_MAX_CHARS, SUBJECT_MAX_CHARS


def clean_text(text: str, *, required: bool = True, limit: int = POST_MAX_CHARS) -> str:
    """Text as stored: LF line ends, trimmed, no NUL, within `limit`; ValidationError otherwise."""
    # Browsers send form text with CRLF line ends, API clients with LF: store one kind.
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if required and not text:
        raise ValidationError("Write something first: the text is empty.")
    if "\x00" in text:
        raise ValidationError("The text contains a null character.")
    if len(text) > limit:
        raise ValidationError(f"The text is limited to {limit} characters.")
    return text


def require_visible_to(user: User, account: Account, role: str) -> None:
    """A person given a role on an activity (assignee, attendee) must be able to see the account."""
    from crm.visibility import can_see_account

    if not can_see_account(user, account.pk):
        raise ValidationError(f"{user.username} cannot see this account, so cannot be its {role}.")


@transaction.atomic
def log_activity(
    *,
    actor: User | None,
    account: Account,
    kind: str,
    body: str = "",
    subject: str = "",
    details: dict[str, Any] | None = None,
    occurred_at: dt.datetime | None = None,
    parent: Activity | None = None,
    contact: Contact | None = None,
    **fields: Any,
) -> Activity:
    """Record one entry of history on `account` and announce it on the account's stream.

    `actor` None is the system itself (imports, integrations); a person must be able to see the
    account, else `AccountNotFound` is raised.
    """
    if actor is not None:
        require_visible_account(actor, account)
    if kind not in Activity.Kind.values:
        raise ValidationError(f"Unknown activity kind {kind!r}.")
    if parent is not None and parent.account_id != account.pk:
        raise ValidationError("A reply must be on the same account as its thread.")
    if contact is not None and contact.account_id != account.pk:
        raise ValidationError("That contact belongs to another account.")
    activity = Activity(
        account=account,
        kind=kind,
        author=actor,
        subject=subject,
        body=body,
        details=details or {},
        occurred_at=occurred_at or timezone.now(),
        parent=parent,
        contact=contact,
        **fields,
    )
    insert_instances([activity], database_ids=True)  # no save signals on Activity
    if is_customer_facing(kind):
        note_touch(account_id=account.pk, at=activity.occurred_at)
    happenings.announce(
        happenings.Happening(happenings.CREATED, activity, actor.pk if actor else None)
    )
    # Last: recording the event takes the sequencer lock, held until commit (realtime/outbox.py).
    events.activity_created(activity)
    return activity


def post_activity(*, author: User, account: Account, body: str) -> Activity:
    """A post by `author` on `account`'s timeline."""
    return log_activity(
        actor=author, account=account, kind=Activity.Kind.POST, body=clean_text(body)
    )


@transaction.atomic
def create_task(
    *,
    actor: User,
    account: Account,
    subject: str,
    assignee: User | None = None,
    due_at: dt.datetime | None = None,
    body: str = "",
    contact: Contact | None = None,
    details: dict[str, Any] | None = None,
    occurred_at: dt.datetime | None = None,
) -> Activity:
    """A task on `account`, assigned to `assignee` (the actor when None)."""
    assignee = assignee or actor
    require_visible_to(assignee, account, "assignee")
    return log_activity(
        actor=actor,
        account=account,
        kind=Activity.Kind.TASK,
        subject=clean_text(subject, limit=SUBJECT_MAX_CHARS),
        body=clean_text(body, required=False),
        assignee=assignee,
        due_at=due_at,
        contact=contact,
        details=details,
        occurred_at=occurred_at,
    )


@transaction.atomic
def log_call(
    *,
    actor: User,
    account: Account,
    contact: Contact | None = None,
    subject: str = "",
    body: str = "",
    occurred_at: dt.datetime | None = None,
    duration_seconds: int | None = None,
    outcome: str = "",
) -> Activity:
    """A call that happened (or was attempted): with whom, when, how long, how it went."""
    if occurred_at is not None and occurred_at > timezone.now() + dt.timedelta(minutes=5):
        raise ValidationError("A logged call cannot be in the future; schedule a task instead.")
    who = contact.full_name if contact is not None else ""
    return log_activity(
        actor=actor,
        account=account,
        kind=Activity.Kind.CALL,
        subject=clean_text(
            subject or (f"Call with {who}" if who else "Call"), limit=SUBJECT_MAX_CHARS
        ),
        body=clean_text(body, required=False),
        contact=contact,
        occurred_at=occurred_at,
        duration_seconds=duration_seconds,
        outcome=outcome,
    )


@transaction.atomic
def log_meeting(
    *,
    actor: User,
    account: Account,
    subject: str,
    starts_at: dt.datetime,
    ends_at: dt.datetime | None = None,
    body: str = "",
    users: list[User] = (),  # type: ignore[assignment]
    contacts: list[Contact] = (),  # type: ignore[assignment]
    decisions: list[str] = (),  # type: ignore[assignment]
    action_items: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> Activity:
    """A meeting with its attendees, notes and decisions; each action item becomes a task.

    `action_items` are {"subject": str, "assignee": User | None, "due_at": datetime | None}.
    """
    if ends_at is not None and ends_at < starts_at:
        raise ValidationError("A meeting cannot end before it starts.")
    for user in users:
        require_visible_to(user, account, "attendee")
    for contact in contacts:
        if contact.account_id != account.pk:
            raise ValidationError(f"{contact.full_name} is a contact of another account.")
    # A meeting logged ahead of time takes its place in the timeline when it is logged; the
    # schedule itself is `starts_at`. One logged afterwards sits where it happened.
    occurred_at = min(starts_at, timezone.now())
    shown = [{"user": u.pk, "name": u.display_name} for u in users]
    shown += [{"contact": c.pk, "name": c.full_name} for c in contacts]
    meeting = log_activity(
        actor=actor,
        account=account,
        kind=Activity.Kind.MEETING,
        subject=clean_text(subject, limit=SUBJECT_MAX_CHARS),
        body=clean_text(body, required=False),
        occurred_at=occurred_at,
        starts_at=starts_at,
        ends_at=ends_at,
        details={
            "attendees": shown,
            "decisions": [clean_text(d, limit=SUBJECT_MAX_CHARS) for d in decisions],
        },
    )
    Attendee.objects.bulk_create(
        [Attendee(activity=meeting, user=u) for u in users]
        + [Attendee(activity=meeting, contact=c) for c in contacts]
    )
    for item in action_items:
        create_task(
            actor=actor,
            account=account,
            subject=item["subject"],
            assignee=item.get("assignee"),
            due_at=item.get("due_at"),
            details={"meeting": meeting.pk},
            occurred_at=occurred_at,
        )
    return meeting
