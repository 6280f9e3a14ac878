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
from django.db import connection, transaction
from django.utils import timezone

from feed import happenings as feed_happenings
from notifications import queries, rules
from notifications.actions.inbox import announce
from notifications.models import Delivery, Happening, Notification
from notifications.titles import title_for

log = logging.getLogger(__name__)

# Happenings the sweep works in one transaction; one that fails sends its chunk one by one.
SWEEP_CHUNK = 200


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
    # One task per transaction: an inbound batch announces the emails that start or join a
    # stored thread, then those answering the batch's own messages, and each task costs ~9 ms
    # of CPU whatever its size (half of the benchmark's 92 notification tasks held 1-3
    # happenings). The later ids join the task already queued for this commit, if it was queued
    # in this savepoint or one enclosing it (so that no rollback can drop it and keep these);
    # a happening rolled back with an inner savepoint is gone when the task looks for it, and
    # the task skips missing rows.
    active = set(connection.savepoint_ids)
    for entry in connection.run_on_commit:  # (savepoint ids, callback, robust)
        savepoints, queued = entry[0], entry[1]
        if isinstance(queued, _NotifyAfterCommit) and savepoints <= active:
            queued.ids.extend(ids)
            return
    transaction.on_commit(_NotifyAfterCommit(ids), robust=True)


class _NotifyAfterCommit:
    """The `notify_happenings` task of a transaction's happenings, queued after its commit."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids

    def __call__(self) -> None:
        from notifications import tasks

        tasks.notify_happenings.delay(self.ids)


def notify_happening(happening_id: int) -> int:
    """Turn one happening into notifications; answers how many were made."""
    return notify_happenings([happening_id])


@transaction.atomic
def notify_happenings(happening_ids: list[int]) -> int:
    """Turn happenings into notifications, set-based; answers how many were made.

    The rows are locked (skipping rows another worker holds) and deleted in this transaction,
    so a happening worked twice notifies once. The rules run per happening on facts read for the
    whole set: a batch of 50 inbound emails took ~16 statements and 10-18 ms of CPU per email
    one at a time, several times the cost of storing and matching the email itself
    (docs/benchmarks-inbound.md); here it is a fixed dozen statements per batch. Notifications
    are made in the order of `happening_ids`, each happening's in the order of its rules.
    """
    rows = list(
        Happening.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("activity__account", "activity__parent", "actor")
        .filter(pk__in=happening_ids)
    )
    if not rows:
        return 0
    order = {pk: index for index, pk in reversed(list(enumerate(happening_ids)))}
    rows.sort(key=lambda row: order[row.pk])
    live = [row for row in rows if row.activity.deleted_at is None]
    asked = [queries.Asked(row.what, row.activity, row.actor_id, row.assignee_id) for row in live]
    chosen = [rules.recipients(facts) for facts in queries.facts_for_each(asked)]
    recipients = {user for some in chosen for user in some}
    deliveries = queries.chosen_deliveries(recipients)
    per_follow = queries.follow_deliveries_each(
        {row.activity.account_id for row in live}, recipients
    )
    sources = [f"h:{row.pk}" for row in live]
    # Told already by the same source: not again (cannot happen while the happening row is
    # locked and deleted with its notifications, but `notify` never made a second one either).
    told = (
        set(
            Notification.objects.filter(
                source__in=sources, recipient_id__in=recipients
            ).values_list("recipient_id", "source")
        )
        if recipients
        else set()
    )
    now = timezone.now()
    email_due_at = now + dt.timedelta(seconds=settings.TIDINGS_EMAIL_BATCH_SECONDS)
    made: list[Notification] = []
    for row, source, some in zip(live, sources, chosen, strict=True):
        activity = row.activity
        follows = per_follow.get(activity.account_id, {})
        for user_id, kind in some.items():
            delivery = rules.delivery_for(kind, deliveries[user_id], follows.get(user_id, ""))
            if delivery == Delivery.OFF or (user_id, source) in told:
                continue
            made.append(
                Notification(
                    recipient_id=user_id,
                    kind=kind,
                    delivery=delivery,
                    activity=activity,
                    account_id=activity.account_id,
                    actor=row.actor,
                    title=title_for(kind, activity, row.actor)[:300],
                    source=source,
                    email_due_at=email_due_at if delivery == Delivery.EMAIL else None,
                )
            )
    Notification.objects.bulk_create(made)
    Happening.objects.filter(pk__in=[row.pk for row in rows]).delete()
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
    ids = stale_happening_ids(timezone.now(), age=age)
    for start in range(0, len(ids), SWEEP_CHUNK):
        chunk = ids[start : start + SWEEP_CHUNK]
        try:
            made += notify_happenings(chunk)
            continue
        except Exception:
            log.exception(
                "notifications for happenings %s..%s failed; one by one", chunk[0], chunk[-1]
            )
        for pk in chunk:
            try:
                made += notify_happening(pk)
            except Exception:
                # One that keeps failing must not stop the others; it stays for the next sweep.
                log.exception("notifications for happening %s failed", pk)
    return made
