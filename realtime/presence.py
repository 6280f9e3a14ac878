"""Presence: who else is looking at a stream (an account page) right now.

Presence is transport state, not history: it lives in its own table, is announced through the
channel layer without an outbox row or cursor, and is recomputed from the table on every change,
so a lost announcement is corrected by the next one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from realtime.models import Presence

STALE_AFTER = timedelta(seconds=90)
# How often each process refreshes the rows of its open connections (well under STALE_AFTER).
REFRESH_EVERY = 30.0


def arrive(*, stream: str, connection: str, user: Any) -> None:
    Presence.objects.update_or_create(
        connection=connection,
        stream=stream,
        defaults={"user_id": user.pk, "seen_at": timezone.now()},
    )


def leave(*, connection: str, stream: str | None = None) -> list[str]:
    """Forget `connection` (on `stream`, or everywhere); returns the streams it left."""
    rows = Presence.objects.filter(connection=connection)
    if stream is not None:
        rows = rows.filter(stream=stream)
    left = sorted(set(rows.values_list("stream", flat=True)))
    rows.delete()
    return left


def refresh(connections: list[str]) -> None:
    if connections:
        Presence.objects.filter(connection__in=connections).update(seen_at=timezone.now())


def viewers(stream: str) -> list[dict[str, Any]]:
    """The people with `stream` open, each once, by name."""
    fresh = timezone.now() - STALE_AFTER
    user_ids = Presence.objects.filter(stream=stream, seen_at__gte=fresh).values("user_id")
    people = get_user_model().objects.filter(pk__in=user_ids, is_active=True)
    return sorted(
        (
            {"id": p.pk, "username": p.username, "display_name": p.get_full_name() or p.username}
            for p in people
        ),
        key=lambda person: person["display_name"].lower(),
    )
