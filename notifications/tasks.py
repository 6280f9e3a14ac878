"""Celery tasks of notifications. Each takes ids (or nothing), calls one action, and says its
retry policy: acknowledged late and re-queued if its worker dies (config/celery.py), retried with
backoff when the database is briefly unreachable, and bounded in time."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from notifications import actions

RETRY = {
    "acks_late": True,
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "max_retries": 10,
}


@shared_task(time_limit=120, soft_time_limit=100, **RETRY)
def notify_happening(happening_id: int) -> int:
    return actions.notify_happening(happening_id)


@shared_task(time_limit=300, soft_time_limit=280, **RETRY)
def notify_happenings(happening_ids: list[int]) -> int:
    """Many happenings (a batch of inbound email), in one set-based transaction; a retry redoes
    only those still waiting, since each is deleted with the notifications it made, and one
    that keeps failing is left to the sweep, which works them one by one."""
    return actions.notify_happenings(happening_ids)


@shared_task(time_limit=300, soft_time_limit=280, **RETRY)
def sweep_happenings() -> int:
    return actions.sweep_happenings()


@shared_task(time_limit=120, soft_time_limit=100, **RETRY)
def send_meeting_reminders() -> int:
    return actions.send_meeting_reminders(timezone.now())


@shared_task(time_limit=120, soft_time_limit=100, **RETRY)
def send_task_alerts() -> int:
    return actions.send_task_alerts(timezone.now())


@shared_task(time_limit=120, soft_time_limit=100, **RETRY)
def send_request_alerts() -> int:
    return actions.send_request_alerts(timezone.now())


@shared_task(time_limit=300, soft_time_limit=280, **RETRY)
def flush_emails() -> int:
    return actions.flush_emails(timezone.now())


@shared_task(time_limit=1800, soft_time_limit=1700, **RETRY)
def send_digests() -> int:
    return actions.send_digests(timezone.now())
