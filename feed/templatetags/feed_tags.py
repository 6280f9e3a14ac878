"""Template tags that render an activity's structured facts and its buttons."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from feed.models import Activity

register = template.Library()


@register.filter
def ago(moment: dt.datetime | None) -> str:
    """ "just now" within a minute, else "3 hours ago" (Django's timesince says "0 minutes")."""
    if moment is None:
        return ""
    if timezone.now() - moment < dt.timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment)} ago"


@register.filter
def status_word(status: str | None) -> str:
    """A request status as people read it ("in_progress" -> "In progress")."""
    if not status:
        return "—"
    return Activity.STATUS_LABELS.get(status, status)


OUTCOMES = {
    "connected": "Connected",
    "left_voicemail": "Left voicemail",
    "no_answer": "No answer",
    "busy": "Busy",
    "wrong_number": "Wrong number",
}


@register.inclusion_tag("feed/_facts.html")
def activity_facts(activity: Activity) -> dict[str, Any]:
    now = timezone.now()
    is_overdue = (
        activity.due_at is not None
        and activity.done_at is None
        and activity.status != "resolved"
        and activity.due_at < now
    )
    minutes = (activity.duration_seconds or 0) // 60
    return {
        "activity": activity,
        "is_overdue": is_overdue,
        "minutes": minutes,
        "outcome": OUTCOMES.get(activity.outcome, activity.outcome),
        "attendees": activity.details.get("attendees", []) if activity.kind == "meeting" else [],
        "status_label": activity.status_label,
    }


@register.inclusion_tag("feed/_buttons.html", takes_context=True)
def activity_buttons(context: dict[str, Any], activity: Activity) -> dict[str, Any]:
    user = context["user"]
    likers = activity.reaction_summary.get("like", [])
    return {
        "activity": activity,
        "csrf_token": context.get("csrf_token"),
        "likers": likers,
        "is_liked": user.username in likers,
        "can_edit": activity.author_id == user.pk
        and activity.kind in ("post", "comment", "meeting", "call", "task", "request"),
        "can_delete": activity.author_id == user.pk or user.is_admin,
        "can_tick": activity.kind == "task"
        and (user.pk in (activity.assignee_id, activity.author_id) or user.is_admin),
        "is_root": activity.parent_id is None,
    }
