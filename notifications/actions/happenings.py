"""From something that happened in the feed to the notifications it makes.

The listener only writes a `Happening` row in the change's own transaction and queues a task
after commit; the task evaluates the rules. So the post path stays fast, a lost queue message or
a killed worker loses nothing (the sweep re-queues the row), and the row's deletion commits with
the notifications it made, so a task run twice makes them once.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from crm.models import User
from feed import happenings as feed_happenings
from notifications import queries, rules
from notifications.actions.inbox import announce, notify
from notifications.models import Happening, Notification

log = logging.getLogger(__name__)


def note_happening(happening: feed_happenings.Happening) -> None:
    """Listener of `feed.happenings`: keep the happening and queue its task after commit."""
    from notifications import tasks

    row = Happening.objects.create(
        what=happening.what,
        activity=happening.activity,
        actor_id=happening.actor_id,
        previous_status=happening.previous_status,
        assignee_id=happening.activity.assignee_id,
    )
    transaction.on_commit(lambda: tasks.notify_happening.delay(row.pk), robust=True)


def note_happenings(batch: list[feed_happenings.Happening]) -> None:
    """`note_happening` for a batch written in one transaction: one INSERT, one task."""
    from notifications import tasks

    rows = Happening.objects.bulk_create(
        [
            Happening(
                what=h.what,
                activity=h.activity,
                actor_id=h.actor_id,
                previous_status=h.previous_status,
                assignee_id=h.activity.assignee_id,
            )
            for h in batch
        ]
    )
    ids = [row.pk for row in rows]
    transaction.on_commit(lambda: tasks.notify_happenings.delay(ids), robust=True)


@transaction.atomic
def notify_happening(happening_id: int) -> int:
    """Turn one happening into notifications; answers how many were made.

    The row is locked (skipping a row another worker holds) and deleted in this transaction.
    """
    row = (
        Happening.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("activity__account", "activity__parent", "actor")
        .filter(pk=happening_id)
        .first()
    )
    if row is None:
        return 0
    activity = row.activity
    made: list[Notification] = []
    if activity.deleted_at is None:
        facts = queries.facts_for(
            what=row.what,
            activity=activity,
            actor_id=row.actor_id,
            assignee_id=row.assignee_id,
        )
        chosen = rules.recipients(facts)
        people = User.objects.in_bulk(list(chosen))
        deliveries = queries.chosen_deliveries(set(chosen))
        per_follow = queries.follow_deliveries(activity.account_id, set(chosen))
        for user_id, kind in chosen.items():
            delivery = rules.delivery_for(kind, deliveries[user_id], per_follow.get(user_id, ""))
            notification = notify(
                recipient=people[user_id],
                kind=kind,
                activity=activity,
                actor=row.actor,
                source=f"h:{row.pk}",
                delivery=delivery,
            )
            if notification is not None:
                made.append(notification)
    row.delete()
    announce(made)
    return len(made)


def stale_happening_ids(now: dt.datetime, *, age: dt.timedelta) -> list[int]:
    """Happenings whose task should have run by now: its message was lost or its worker died."""
    cutoff = now - age
    return list(
        Happening.objects.filter(created_at__lt=cutoff).order_by("id").values_list("pk", flat=True)
    )


def sweep_happenings(*, age: dt.timedelta | None = None) -> int:
    """Work the happenings older than `age` (one sweep interval by default) here and now;
    answers how many notifications that made. One still queued is safe to work twice: the
    row lock and its deletion make the second run a no-op."""
    if age is None:
        age = dt.timedelta(seconds=settings.TIDINGS_SWEEP_SECONDS)
    made = 0
    for pk in stale_happening_ids(timezone.now(), age=age):
        try:
            made += notify_happening(pk)
        except Exception:
            # One that keeps failing must not stop the others; it stays for the next sweep.
            log.exception("notifications for happening %s failed", pk)
    return made
