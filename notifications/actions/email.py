"""Sending the emails: batches of what needs a person, and their digest.

Each send happens inside the transaction that marks its notifications sent: if sending fails the
marks roll back and the next run tries again; a crash after the send and before the commit sends
that batch again (at least once, never silently dropped). Rows are locked with SKIP LOCKED, so two
workers running the same job never send the same notification twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections import defaultdict
from collections.abc import Callable
from functools import partial

from django.db import transaction

from crm.models import Account, User
from crm.visibility import visible_accounts
from notifications import mail
from notifications.models import Delivery, Notification, Schedule, SentEmail
from notifications.queries import schedule_of

log = logging.getLogger(__name__)


def flush_emails(now: dt.datetime) -> int:
    """Send every batch whose wait is over; answers how many emails went out."""
    recipients = (
        Notification.objects.filter(emailed_at__isnull=True, email_due_at__lte=now)
        .values_list("recipient_id", flat=True)
        .distinct()
    )
    return _each_person(list(recipients), partial(_flush_one, now=now), "emailing notifications")


@transaction.atomic
def _flush_one(recipient_id: int, now: dt.datetime) -> int:
    user = User.objects.get(pk=recipient_id)
    due = list(
        Notification.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(recipient_id=recipient_id, emailed_at__isnull=True, email_due_at__lte=now)
        .select_related("activity__account")
        .order_by("id")
    )
    if not due:
        return 0
    visible = set(visible_accounts(user).values_list("pk", flat=True)) if user.is_active else set()
    # Read meanwhile, no longer visible, or nowhere to send: nothing to email, and done with.
    sendable = [
        item
        for item in due
        if item.read_at is None
        and item.activity.account_id in visible
        and item.activity.deleted_at is None
        and user.email
    ]
    by_account: dict[int, list[Notification]] = defaultdict(list)
    for item in sendable:
        by_account[item.activity.account_id].append(item)
    for items in by_account.values():
        account = items[0].activity.account
        previous = (
            SentEmail.objects.filter(recipient=user, account=account, is_digest=False)
            .order_by("-sent_at", "-id")
            .values_list("message_id", flat=True)
            .first()
        )
        message = mail.batch_email(user, account, items, previous)
        message.send()
        SentEmail.objects.create(
            recipient=user,
            account=account,
            message_id=message.extra_headers["Message-ID"],
            subject=str(message.subject),
            sent_at=now,
        )
    Notification.objects.filter(pk__in=[item.pk for item in due]).update(emailed_at=now)
    return len(by_account)


def send_digests(now: dt.datetime) -> int:
    """Send the digest of everyone whose local digest time has come; answers how many went."""
    people = User.objects.filter(is_active=True).exclude(email="").values_list("pk", flat=True)
    return _each_person(list(people), partial(_digest_one, now=now), "the digest")


def _each_person(user_ids: list[int], send: Callable[[int], int], what: str) -> int:
    """`send` for each person, apart: one refused address or broken message must not hold up
    everyone else's mail. Their rows stay unsent and the next run tries again (ids only in the
    log, never bodies)."""
    sent = 0
    for user_id in user_ids:
        try:
            sent += send(user_id)
        except Exception:
            log.exception("%s for user %s failed", what, user_id)
    return sent


def _digest_is_due(schedule: Schedule, now: dt.datetime) -> bool:
    if schedule.digest == Schedule.Digest.OFF:
        return False
    local = now.astimezone(zoneinfo.ZoneInfo(schedule.timezone))
    if local.hour < schedule.digest_hour or schedule.last_digest_on == local.date():
        return False
    return schedule.digest == Schedule.Digest.DAILY or local.weekday() == 0


@transaction.atomic
def _digest_one(user_id: int, now: dt.datetime) -> int:
    user = User.objects.get(pk=user_id)
    if not _digest_is_due(schedule_of(user), now):
        return 0
    schedule, _ = Schedule.objects.select_for_update().get_or_create(user=user)
    if not _digest_is_due(schedule, now):  # another worker sent it meanwhile
        return 0
    pending = list(
        Notification.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(recipient=user, delivery=Delivery.DIGEST, digested_at__isnull=True)
        .filter(activity__account__in=visible_accounts(user), activity__deleted_at__isnull=True)
        .select_related("activity__account")
        .order_by("activity__account__name", "id")
    )
    groups: dict[int, tuple[Account, list[Notification]]] = {}
    for item in pending:
        account = item.activity.account
        groups.setdefault(account.pk, (account, []))[1].append(item)
    sent = 0
    if pending:
        period = "weekly" if schedule.digest == Schedule.Digest.WEEKLY else "daily"
        message = mail.digest_email(user, list(groups.values()), period)
        message.send()
        SentEmail.objects.create(
            recipient=user,
            message_id=message.extra_headers["Message-ID"],
            subject=str(message.subject),
            sent_at=now,
            is_digest=True,
        )
        Notification.objects.filter(pk__in=[item.pk for item in pending]).update(digested_at=now)
        sent = 1
    schedule.last_digest_on = now.astimezone(zoneinfo.ZoneInfo(schedule.timezone)).date()
    schedule.save(update_fields=["last_digest_on"])
    return sent
