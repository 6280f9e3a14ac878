"""Celery tasks of the integrations. Each takes ids (or nothing) and calls one action.

Retry policy: acknowledged late and re-queued if the worker dies (config/celery.py); a database
outage is retried with backoff; the actions are idempotent (a drain claims only what no other
holds) and give a message up after a few attempts, so neither a retry nor a re-delivery ever
posts twice or loops forever.
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError

from integrations import actions
from integrations.support import replies

# A drain stops taking batches after actions.processing.DRAIN_SECONDS; this leaves a slow batch
# (parsing is linear in the message, 30 MB at most) an order of magnitude above the slowest
# message of the malformed corpus. The hard limit stays below actions.CLAIM_LEASE.
SOFT_TIME_LIMIT = 60
TIME_LIMIT = 90
RETRY = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "soft_time_limit": SOFT_TIME_LIMIT,
    "time_limit": TIME_LIMIT,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "max_retries": 8,
}


@shared_task(**RETRY)
def drain_inbound_emails() -> int:
    """Process queued inbound email in batches until none is left (integrations.actions)."""
    try:
        return actions.drain_inbound_emails()
    except SoftTimeLimitExceeded:
        # The slow message ended failed, the rest went back to the queue: drain on.
        actions.request_drain()
        return 0


@shared_task(**RETRY)
def process_inbound_email(inbound_id: int) -> str:
    """One message (tasks queued before batching existed, and `ingest_mail`'s old callers)."""
    try:
        inbound = actions.process_inbound_email(inbound_id=inbound_id)
    except SoftTimeLimitExceeded:
        return "failed"
    return inbound.status if inbound is not None else "missing"


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def requeue_stale_inbound_emails() -> int:
    return actions.requeue_stale_inbound_emails(older_than=dt.timedelta(minutes=5))


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def prune_webhook_tokens() -> int:
    return actions.prune_webhook_tokens(older_than=dt.timedelta(days=2))


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    # A task's own hard limit needs its own soft one: the app's default soft limit (240 s) is
    # above 60 s, and Celery refuses to send such a task at all.
    time_limit=60,
    soft_time_limit=50,
    autoretry_for=(OperationalError, InterfaceError, OSError),
    retry_backoff=True,
    max_retries=8,
)
def deliver_customer_reply(reply_id: int) -> bool:
    """A support reply to a customer; sent once (the action marks it sent in its transaction)."""
    return replies.deliver_customer_reply(reply_id=reply_id)


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def deliver_pending_customer_replies() -> int:
    return replies.deliver_pending_customer_replies(older_than=60.0)
