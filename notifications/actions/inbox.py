"""Making notifications and reading them."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm.models import User
from feed.models import Activity
from notifications import events
from notifications.models import Delivery, Notification
from notifications.queries import unread_count
from notifications.titles import title_for


def notify(
    *,
    recipient: User,
    kind: str,
    activity: Activity,
    actor: User | None,
    source: str,
    delivery: str,
    tz: dt.tzinfo | None = None,
) -> Notification | None:
    """Make the notification of `recipient` about `activity` unless they turned `kind` off or
    were already told by the same `source`; answers it, or None. Must run inside a transaction,
    which then calls `announce` with what was made as its last step (the push takes the global
    event lock, which should be held for as short a time as possible)."""
    if delivery == Delivery.OFF:
        return None
    now = timezone.now()
    email_due_at = None
    if delivery == Delivery.EMAIL:
        email_due_at = now + dt.timedelta(seconds=settings.TIDINGS_EMAIL_BATCH_SECONDS)
    notification, created = Notification.objects.get_or_create(
        recipient=recipient,
        source=source,
        defaults={
            "kind": kind,
            "delivery": delivery,
            "activity": activity,
            "account_id": activity.account_id,
            "actor": actor,
            "title": title_for(kind, activity, actor, tz)[:300],
            "email_due_at": email_due_at,
        },
    )
    return notification if created else None


def announce(notifications: list[Notification]) -> None:
    """Push what the inbox shows to each recipient's open tabs. The last step of a transaction:
    recording events takes the event sequencer's lock until commit."""
    shown = [item for item in notifications if item.delivery in (Delivery.IN_APP, Delivery.EMAIL)]
    if not shown:
        return
    # Each recipient's count once, however many of theirs a batch made; the events in one write.
    people = {item.recipient_id: item.recipient for item in shown if _has_recipient(item)}
    missing = {item.recipient_id for item in shown} - set(people)
    people |= User.objects.in_bulk(list(missing)) if missing else {}
    unread = {pk: unread_count(person) for pk, person in people.items()}
    # Each event says the count as it was when its notification was made, as if they had been
    # made one by one: the count now, less those of the recipient made after it.
    counted: list[tuple[Notification, int]] = []
    for item in reversed(shown):
        counted.append((item, unread[item.recipient_id]))
        unread[item.recipient_id] -= 1
    events.notifications_created(counted[::-1])


def _has_recipient(notification: Notification) -> bool:
    return Notification.recipient.is_cached(notification)  # type: ignore[attr-defined]


@transaction.atomic
def mark_read(*, user: User, ids: list[int] | None = None) -> int:
    """Mark `user`'s notifications `ids` (all of them when None) read; answers how many changed.

    Ids that are not the user's own raise ValidationError and change nothing, so nobody learns
    whether someone else's notification exists.
    """
    mine = Notification.objects.filter(recipient=user)
    if ids is not None:
        ids = sorted(set(ids))
        if mine.filter(pk__in=ids).count() != len(ids):
            raise ValidationError("Some of those notifications are not yours or do not exist.")
        mine = mine.filter(pk__in=ids)
    changed = mine.filter(read_at__isnull=True).update(read_at=timezone.now())
    if changed:
        events.notifications_read(user.pk, ids=ids, unread=unread_count(user))
    return changed
