"""The event outbox and WebSocket tickets.

`Event` rows are written in the same transaction as the change they describe, so what committed is
what can be delivered. Their ids are the stream cursors: `realtime.outbox` assigns them under a lock
held until commit, which makes id order equal commit order (see docs/realtime.md).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Event(models.Model):
    id = models.BigAutoField(primary_key=True)
    stream = models.CharField(max_length=64)
    # A second stream the event also belongs to (a thread, for the followers of that thread).
    topic = models.CharField(max_length=64, blank=True, default="")
    # The id of the event committed just before this one, on any stream: a hub that has not
    # seen `prev` knows a live message went missing (realtime/hub.py).
    prev_id = models.BigIntegerField(null=True, blank=True)
    type = models.CharField(max_length=64)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["stream", "id"], name="realtime_event_stream_id"),
            models.Index(fields=["topic", "id"], name="realtime_event_topic_id"),
        ]

    def __str__(self) -> str:
        return f"{self.stream}#{self.id} {self.type}"

    def as_message(self) -> dict[str, object]:
        return {
            "id": self.id,
            "prev": self.prev_id,
            "stream": self.stream,
            "topic": self.topic,
            "type": self.type,
            "data": self.data,
        }


class OutboxMark(models.Model):
    """One row: the newest event id that pruning may have deleted (realtime.outbox.prune_events).

    A cursor below it may have lost events to pruning, so it is answered with `resync`; cursors
    handed out are never below it, so a quiet stream whose events were all pruned still resumes.
    """

    pruned_through = models.BigIntegerField(default=0)
    pruned_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"events pruned through #{self.pruned_through}"


class Ticket(models.Model):
    """A short-lived, single-use credential for a non-browser WebSocket client.

    Only a hash of the ticket is stored, so a database dump cannot be replayed.
    """

    key_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="realtime_tickets"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"ticket for {self.user_id} until {self.expires_at:%H:%M:%S}"


class Presence(models.Model):
    """Who has a stream open right now, one row per connection and stream.

    Rows of a web process that died without cleaning up stop counting once `seen_at` is older
    than realtime.presence.STALE_AFTER; live processes refresh theirs well within that.
    """

    stream = models.CharField(max_length=64)
    connection = models.CharField(max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presences"
    )
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "stream"], name="realtime_unique_presence"
            )
        ]
        indexes = [models.Index(fields=["stream", "seen_at"], name="realtime_presence_stream")]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.stream}"
