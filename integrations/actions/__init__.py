"""The write path of inbound email: accept (store raw), process (parse, match, post), and the
people's corrections from triage (assign, teach a rule, re-run).

Accepting commits the raw bytes and nothing else, so the answer to the sender is fast and a crash
later loses nothing; processing runs in batches in a Celery task (`integrations.tasks`) that a
commit asks for (`queueing`), and `processing` says how a batch keeps every guarantee.
"""

from integrations.actions.mail import (
    PROCESSED_FIELDS,
    Accepted,
    accept_inbound_email,
    assign_inbound_email,
    create_logging_address,
    post_to_timeline,
    prune_webhook_tokens,
    remember_webhook_token,
    renew_logging_address,
    requeue_stale_inbound_emails,
    rerun_inbound_email,
    revoke_logging_address,
    save_logging_address,
    teach_rule,
)
from integrations.actions.processing import (
    BATCH_SIZE,
    CLAIM_LEASE,
    MAX_ATTEMPTS,
    claim_batch,
    drain_inbound_emails,
    process_batch,
    process_inbound_email,
)
from integrations.actions.queueing import request_drain

__all__ = [
    "BATCH_SIZE",
    "CLAIM_LEASE",
    "MAX_ATTEMPTS",
    "PROCESSED_FIELDS",
    "Accepted",
    "accept_inbound_email",
    "assign_inbound_email",
    "claim_batch",
    "create_logging_address",
    "drain_inbound_emails",
    "post_to_timeline",
    "process_batch",
    "process_inbound_email",
    "prune_webhook_tokens",
    "remember_webhook_token",
    "renew_logging_address",
    "request_drain",
    "requeue_stale_inbound_emails",
    "rerun_inbound_email",
    "revoke_logging_address",
    "save_logging_address",
    "teach_rule",
]
