from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from realtime import outbox, tickets


@shared_task(acks_late=True, time_limit=60, soft_time_limit=50)
def prune_expired_tickets() -> int:
    return tickets.prune_expired_tickets()


@shared_task(acks_late=True, time_limit=600)
def prune_events() -> int:
    days = settings.TIDINGS_EVENT_RETENTION_DAYS
    return outbox.prune_events(older_than=timezone.now() - dt.timedelta(days=days))
