"""Reminders that time makes: meetings starting soon, tasks falling due or overdue, requests
overdue.

Run by the periodic jobs. Each notification's `source` names the activity and the reminder, so
running a job twice (or two beats at once) tells nobody twice.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.db import transaction
from django.db.models import Max

from crm.models import User
from crm.visibility import can_see_account
from feed.models import Activity
from notifications import queries, rules
from notifications.actions.inbox import announce, notify
from notifications.models import Kind, Schedule


def _tell(
    user: User, kind: str, activity: Activity, source: str, tz: dt.tzinfo | None = None
) -> bool:
    """One reminder in its own short transaction, pushed as its last step; times read in `tz`."""
    if not user.is_active or not can_see_account(user, activity.account_id):
        return False
    chosen = queries.chosen_deliveries({user.pk})[user.pk]
    delivery = rules.delivery_for(kind, chosen)
    with transaction.atomic():
        made = notify(
            recipient=user,
            kind=kind,
            activity=activity,
            actor=None,
            source=source,
            delivery=delivery,
            tz=tz,
        )
        if made is not None:
            announce([made])
    return made is not None


def send_meeting_reminders(now: dt.datetime) -> int:
    """Remind each attending colleague of a meeting within their lead time before it starts."""
    longest = Schedule.objects.aggregate(longest=Max("reminder_minutes"))["longest"]
    horizon = max(longest or 0, rules.DEFAULT_REMINDER_MINUTES)
    meetings = list(
        Activity.objects.filter(
            kind=Activity.Kind.MEETING,
            deleted_at__isnull=True,
            starts_at__gt=now,
            starts_at__lte=now + dt.timedelta(minutes=horizon),
        ).select_related("account")
    )
    attendees = queries.meeting_attendees([meeting.pk for meeting in meetings])
    people = User.objects.in_bulk({pk for pks in attendees.values() for pk in pks})
    schedules = Schedule.objects.filter(user_id__in=people)
    leads = dict(schedules.values_list("user_id", "reminder_minutes"))
    zones = {
        pk: zoneinfo.ZoneInfo(name) for pk, name in schedules.values_list("user_id", "timezone")
    }
    sent = 0
    for meeting in meetings:
        if meeting.starts_at is None:  # excluded by the query; for the type checker
            continue
        for user_id in attendees.get(meeting.pk, []):
            lead = leads.get(user_id, rules.DEFAULT_REMINDER_MINUTES)
            if rules.reminder_is_due(meeting.starts_at, lead, now):
                source = f"reminder:{meeting.pk}:{meeting.starts_at:%Y%m%d%H%M}"
                zone = zones.get(user_id, dt.UTC)  # the reader's time zone; UTC by default
                sent += _tell(people[user_id], Kind.MEETING_REMINDER, meeting, source, zone)
    return sent


def send_task_alerts(now: dt.datetime) -> int:
    """Tell assignees of open tasks that fall due within a day, and again once overdue."""
    tasks = Activity.objects.filter(
        kind=Activity.Kind.TASK,
        deleted_at__isnull=True,
        done_at__isnull=True,
        assignee__isnull=False,
        due_at__lte=now + rules.DUE_SOON,
        # Overdue for more than a week is old news, not a new alert (and keeps the sweep small).
        due_at__gt=now - dt.timedelta(days=7),
    ).select_related("account", "assignee")
    sent = 0
    for task in tasks:
        kind = rules.task_alert(task.due_at, task.done_at, now)
        if kind and task.assignee is not None:
            source = f"{kind}:{task.pk}:{task.due_at:%Y%m%d%H%M}"
            sent += _tell(task.assignee, kind, task, source)
    return sent


@transaction.atomic
def send_request_alerts(now: dt.datetime) -> int:
    """Tell the assignee and the queue's lead of each unresolved request past its due time, once
    per due time (a re-ranked request that runs overdue again is news again)."""
    requests = (
        Activity.objects.filter(
            kind=Activity.Kind.REQUEST,
            deleted_at__isnull=True,
            due_at__lte=now,
            # As with tasks: overdue for more than a week is old news, and keeps the sweep small.
            due_at__gt=now - dt.timedelta(days=7),
        )
        .exclude(status="resolved")
        .select_related("account", "assignee", "queue__lead")
    )
    sent = 0
    for request in requests:
        lead = request.queue.lead if request.queue is not None else None
        people = {p.pk: p for p in (request.assignee, lead) if p is not None}
        for user_id in rules.request_overdue_recipients(
            assignee=request.assignee_id,
            queue_lead=lead.pk if lead is not None else None,
            can_see=frozenset(people),
        ):
            source = f"request_overdue:{request.pk}:{request.due_at:%Y%m%d%H%M}"
            sent += _tell(people[user_id], Kind.REQUEST_OVERDUE, request, source)
    return sent
