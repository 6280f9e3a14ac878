"""The one line that says what a notification is about, as the inbox and emails show it."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from crm.models import User
from feed.models import Activity
from notifications.models import Kind

STATUS_WORDS = {
    "open": "open",
    "in_progress": "in progress",
    "waiting": "waiting on the customer",
    "resolved": "resolved",
}


def _what(activity: Activity) -> str:
    label = activity.get_kind_display().lower()
    return f"{label} “{activity.subject}”" if activity.subject else f"a {label}"


def title_for(
    kind: str, activity: Activity, actor: User | None, tz: dt.tzinfo | None = None
) -> str:
    """The line for `kind`; times in `tz` (the reader's time zone; the server's when None)."""
    who = actor.display_name if actor is not None else "Tidings"
    where = activity.account.name
    if kind == Kind.MENTION:
        return f"{who} mentioned you on {where}"
    if kind == Kind.ASSIGNED:
        return f"{who} assigned you the {_what(activity)} on {where}"
    if kind == Kind.REPLY:
        if activity.kind == Activity.Kind.COMMENT and activity.details.get("internal"):
            return f"{who} added an internal note to a request on {where}"
        return f"{who} replied in a thread on {where}"
    if kind == Kind.REQUEST_STATUS:
        status = STATUS_WORDS.get(activity.status, activity.status)
        return f"The request “{activity.subject}” on {where} is now {status}"
    if kind == Kind.MEETING_REMINDER:
        at = (
            timezone.localtime(activity.starts_at, tz).strftime("%H:%M %Z")
            if activity.starts_at
            else "?"
        )
        return f"Meeting “{activity.subject}” on {where} starts at {at}"
    if kind == Kind.TASK_DUE:
        return f"Your task “{activity.subject}” on {where} is due soon"
    if kind == Kind.TASK_OVERDUE:
        return f"Your task “{activity.subject}” on {where} is overdue"
    if kind == Kind.REQUEST_OVERDUE:
        return f"The request “{activity.subject}” on {where} is overdue"
    return f"{who} logged {_what(activity)} on {where}"
