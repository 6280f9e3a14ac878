"""Single-use, short-lived tickets for WebSocket clients that have no session cookie."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from realtime.models import Ticket


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_ticket(*, user: Any) -> tuple[str, int]:
    """A new ticket for `user` and its lifetime in seconds."""
    ttl = settings.TIDINGS_TICKET_TTL_SECONDS
    key = secrets.token_urlsafe(32)
    Ticket.objects.create(
        key_hash=_hash(key), user=user, expires_at=timezone.now() + timedelta(seconds=ttl)
    )
    return key, ttl


@transaction.atomic
def redeem_ticket(key: str) -> Any | None:
    """The active user the ticket was issued to, or None; a ticket works once, before it expires."""
    if not key or len(key) > 128:
        return None
    now = timezone.now()
    # One conditional UPDATE: of two concurrent redemptions, only one changes the row.
    used = Ticket.objects.filter(
        key_hash=_hash(key), used_at__isnull=True, expires_at__gt=now
    ).update(used_at=now)
    if used != 1:
        return None
    ticket = Ticket.objects.select_related("user").get(key_hash=_hash(key))
    return ticket.user if ticket.user.is_active else None


def prune_expired_tickets() -> int:
    deleted, _ = Ticket.objects.filter(expires_at__lt=timezone.now() - timedelta(hours=1)).delete()
    return deleted
