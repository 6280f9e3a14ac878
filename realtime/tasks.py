from __future__ import annotations

from celery import shared_task

from realtime import tickets


@shared_task(acks_late=True, time_limit=60)
def prune_expired_tickets() -> int:
    return tickets.prune_expired_tickets()
