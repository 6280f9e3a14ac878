"""Celery tasks of the integrations. Each takes ids and calls one action.

Retry policy: acknowledged late and re-queued if the worker dies (config/celery.py); a database
outage is retried with backoff; the action itself is idempotent and gives a message up after a
few attempts, so neither a retry nor a re-delivery ever posts twice or loops forever.
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import DatabaseError

from integrations import actions
from integrations.support import replies

# Parsing is linear in the message (30 MB at most); this is an order of magnitude above the
# slowest message of the malformed corpus. The hard limit stays below actions.CLAIM_LEASE.
SOFT_TIME_LIMIT = 60
TIME_LIMIT = 90


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=SOFT_TIME_LIMIT,
    time_limit=TIME_LIMIT,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=8,
)
def process_inbound_email(inbound_id: int) -> str:
    try:
        inbound = actions.process_inbound_email(inbound_id=inbound_id)
    except SoftTimeLimitExceeded:
        actions.give_up_inbound_email(
            inbound_id=inbound_id, reason=f"Processing took over {SOFT_TIME_LIMIT} s."
        )
        return "failed"
    return inbound.status if inbound is not None else "missing"


@shared_task(acks_late=True, time_limit=120)
def requeue_stale_inbound_emails() -> int:
    return actions.requeue_stale_inbound_emails(older_than=dt.timedelta(minutes=5))


@shared_task(acks_late=True, time_limit=120)
def prune_webhook_tokens() -> int:
    return actions.prune_webhook_tokens(older_than=dt.timedelta(days=2))


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=60,
    autoretry_for=(DatabaseError, OSError),
    retry_backoff=True,
    max_retries=8,
)
def deliver_customer_reply(reply_id: int) -> bool:
    """A support reply to a customer; sent once (the action marks it sent in its transaction)."""
    return replies.deliver_customer_reply(reply_id=reply_id)


@shared_task(acks_late=True, time_limit=120)
def deliver_pending_customer_replies() -> int:
    return replies.deliver_pending_customer_replies(older_than=60.0)
