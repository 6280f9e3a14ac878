"""Who hears of what: the rules, in one place, as pure functions of plain facts.

`notifications.queries.facts_for` gathers the facts from the database; nothing here touches it,
so every rule is checked by a table in tests/notifications/test_rules.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from notifications.models import Delivery, Kind

CREATED = "created"
ASSIGNED = "assigned"
STATUS_CHANGED = "status_changed"

# The quiet defaults: what needs you reaches you in the app and by email; what merely happened
# on accounts you follow waits for the digest.
DEFAULT_DELIVERY: dict[str, str] = {
    Kind.MENTION: Delivery.EMAIL,
    Kind.ASSIGNED: Delivery.EMAIL,
    Kind.REPLY: Delivery.EMAIL,
    Kind.REQUEST_STATUS: Delivery.IN_APP,
    Kind.MEETING_REMINDER: Delivery.IN_APP,
    Kind.TASK_DUE: Delivery.IN_APP,
    Kind.TASK_OVERDUE: Delivery.IN_APP,
    Kind.REQUEST_OVERDUE: Delivery.EMAIL,
    Kind.FOLLOWED_ACTIVITY: Delivery.DIGEST,
}

DEFAULT_REMINDER_MINUTES = 15
# A task "falls due" this long before its due time, and is overdue after it.
DUE_SOON = dt.timedelta(hours=24)


@dataclass(frozen=True)
class Facts:
    """What a happening is about, as ids. `can_see` holds who of the people named here may see
    the account now; nobody else is told anything."""

    what: str
    kind: str
    actor: int | None
    can_see: frozenset[int]
    author: int | None = None
    assignee: int | None = None
    mentioned: frozenset[int] = frozenset()
    thread_author: int | None = None
    thread_followers: frozenset[int] = frozenset()
    thread_muters: frozenset[int] = frozenset()
    # Followers of the account: user id -> the kinds they want (empty: all kinds).
    account_followers: Mapping[int, frozenset[str]] = field(default_factory=dict)


def recipients(facts: Facts) -> dict[int, str]:
    """Each person to tell, with the one reason they are told (the first rule that matches)."""
    chosen: dict[int, str] = {}

    def offer(user: int | None, kind: str) -> None:
        if user is None or user == facts.actor or user in chosen or user not in facts.can_see:
            return
        chosen[user] = kind

    if facts.what == CREATED:
        for user in sorted(facts.mentioned):
            offer(user, Kind.MENTION)
        if facts.kind in ("task", "request"):
            offer(facts.assignee, Kind.ASSIGNED)
        if facts.kind == "comment":
            for user in _thread_audience(facts):
                offer(user, Kind.REPLY)
        for user, kinds in sorted(facts.account_followers.items()):
            if user not in facts.thread_muters and (not kinds or facts.kind in kinds):
                offer(user, Kind.FOLLOWED_ACTIVITY)
    elif facts.what == ASSIGNED:
        offer(facts.assignee, Kind.ASSIGNED)
    elif facts.what == STATUS_CHANGED:
        if facts.author not in facts.thread_muters:
            offer(facts.author, Kind.REQUEST_STATUS)
        for user in _thread_audience(facts):
            offer(user, Kind.REQUEST_STATUS)
    return chosen


def _thread_audience(facts: Facts) -> list[int]:
    """The thread's author and followers, less whoever muted it."""
    audience = {facts.thread_author, *facts.thread_followers} - {None}
    return sorted(user for user in audience if user is not None and user not in facts.thread_muters)


def delivery_for(kind: str, chosen: Mapping[str, str], follow_delivery: str = "") -> str:
    """How a notification of `kind` reaches someone: their per-follow choice for followed
    activity, else their choice for the kind, else the quiet default."""
    if kind == Kind.FOLLOWED_ACTIVITY and follow_delivery:
        return follow_delivery
    return chosen.get(kind) or DEFAULT_DELIVERY[kind]


def reminder_is_due(starts_at: dt.datetime, lead_minutes: int, now: dt.datetime) -> bool:
    """A meeting's reminder goes out within `lead_minutes` before it starts, and not after."""
    return now < starts_at <= now + dt.timedelta(minutes=lead_minutes)


def task_alert(due_at: dt.datetime | None, done_at: dt.datetime | None, now: dt.datetime) -> str:
    """`task_overdue` past its due time, `task_due` within a day of it, "" otherwise."""
    if due_at is None or done_at is not None:
        return ""
    if due_at <= now:
        return Kind.TASK_OVERDUE
    if due_at <= now + DUE_SOON:
        return Kind.TASK_DUE
    return ""


def request_overdue_recipients(
    *, assignee: int | None, queue_lead: int | None, can_see: frozenset[int]
) -> list[int]:
    """Who hears that a request ran past its due time: whoever has it, and the lead of its queue
    (who must find someone when nobody has it). Only people who can see the account."""
    chosen = [user for user in (assignee, queue_lead) if user is not None and user in can_see]
    return list(dict.fromkeys(chosen))
