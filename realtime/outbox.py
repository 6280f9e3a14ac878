"""Recording events in the outbox and publishing them after commit.

The ordering problem: two transactions that take ids 7 and 8 may commit 8 first. A subscriber
that saw 8 and resumes "after 8" would never get 7. So `record_event` takes a lock that serialises
event writers and is held until commit: the id is assigned under it, hence ids commit in order, and
"every event with id > cursor" is a gap-free question. Callers record events as the last step of
their transaction so the lock is held for as short a time as possible.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import partial
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from crm.sqlrows import prepared_cursor
from realtime.channel import announce_access_changed, publish_message, publish_messages
from realtime.models import Event, OutboxMark

# Arbitrary constant naming the event-sequencer advisory lock on PostgreSQL.
SEQUENCER_LOCK_KEY = 0x7469_6469  # "tidi"


def _lock_sequencer() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEQUENCER_LOCK_KEY])
    # SQLite: transactions start IMMEDIATE (see settings), so the database write lock already
    # serialises every writer from its first statement to its commit.


# After-commit work that goes to the channel layer. Their order among themselves is meaningful (an
# access change announced before an event is re-checked before that event arrives: see
# feed.actions.history.move_activity), so they are kept in registration order.
_CHANNEL_HOOKS = (announce_access_changed, publish_message, publish_messages)


def _publish_after_commit(hook: partial[None]) -> None:
    """Run `hook` after commit, ahead of the transaction's other after-commit work.

    Django runs on_commit hooks in registration order, and actions record their events last (the
    sequencer lock is held until commit), so a post's publish used to wait for the hooks
    registered before it: the notification happening's Celery `delay`, a Redis round trip of its
    own, measured at 2-3 ms of every post's delivery latency. Nobody waits live on those hooks; a
    follower waits on this one. Hooks that also talk to the channel layer keep their order.
    """
    transaction.on_commit(hook)
    hooks = connection.run_on_commit
    if not isinstance(hooks, list) or not hooks or hooks[-1][1] is not hook:
        return  # not the structure this was written against: leave the order alone
    entry = hooks.pop()
    at = len(hooks)
    while at > 0 and getattr(hooks[at - 1][1], "func", None) not in _CHANNEL_HOOKS:
        at -= 1
    hooks.insert(at, entry)


def record_event(*, stream: str, type: str, data: dict[str, Any], topic: str = "") -> Event:
    """Append an event to `stream`; it is published to live subscribers once the caller commits.

    Must be called inside the transaction that makes the change the event describes.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("record_event must run inside the transaction of the change.")
    if connection.vendor == "postgresql":
        return record_events([(stream, type, data, topic)])[0]
    _lock_sequencer()
    # Under the lock, the newest id is the event committed just before this one: the chain
    # every hub follows to notice a lost message.
    prev_id = newest_event_id() or None
    event = Event.objects.create(stream=stream, topic=topic, prev_id=prev_id, type=type, data=data)
    _publish_after_commit(partial(publish_message, event.as_message()))
    return event


# The lock, the newest id, the new ids and the INSERT in one statement (PostgreSQL): see
# realtime/migrations/0005_append_events.py for why a function, and how it stays correct.
_APPEND_SQL = "SELECT event_id, event_prev_id FROM realtime_append_events(%s, %s, %s, %s, %s, %s)"


def record_events(items: list[tuple[str, str, dict[str, Any], str]]) -> list[Event]:
    """`record_event` for many events at once: (stream, type, data, topic) each, in order.

    On PostgreSQL one statement takes the sequencer lock, reads the newest id, draws the new ids
    and INSERTs the events (`realtime_append_events`), and one publish follows the commit: three
    round trips under the lock were one, and the inbound worker writes a batch of emails in one
    transaction. The ids are drawn under the lock, so they increase in commit order like
    `record_event`'s, and each event's `prev_id` is the one committed or written before it.
    """
    if not items:
        return []
    if not connection.in_atomic_block:
        raise RuntimeError("record_events must run inside the transaction of the change.")
    if connection.vendor != "postgresql":
        return [record_event(stream=s, type=t, data=d, topic=topic) for s, t, d, topic in items]
    now = timezone.now()
    encoder = Event._meta.get_field("data").encoder  # type: ignore[union-attr]
    params = [
        SEQUENCER_LOCK_KEY,
        [stream for stream, _, _, _ in items],
        [topic for _, _, _, topic in items],
        [type for _, type, _, _ in items],
        [json.dumps(data, cls=encoder) for _, _, data, _ in items],
        now,
    ]
    with prepared_cursor() as cursor:
        cursor.execute(_APPEND_SQL, params)
        written = sorted(cursor.fetchall())  # in id order, which is the order given
    events = [
        Event(
            id=event_id,
            stream=stream,
            topic=topic,
            prev_id=prev_id,
            type=type,
            data=data,
            created_at=now,
        )
        for (event_id, prev_id), (stream, type, data, topic) in zip(written, items, strict=True)
    ]
    for event in events:
        event._state.adding = False
        event._state.db = connection.alias
    _publish_after_commit(partial(publish_messages, [e.as_message() for e in events]))
    return events


def pruned_through() -> int:
    """Events with ids up to this may have been pruned (0: none ever was)."""
    mark = OutboxMark.objects.filter(pk=1).values_list("pruned_through", flat=True).first()
    return mark or 0


def streams_head(streams: set[str]) -> int:
    """The newest cursor among `streams`: their newest event, or the pruning mark when that is
    newer (a stream whose events were all pruned resumes from the mark, not from 0, which the
    mark would answer with `resync` forever)."""
    head = 0
    if streams:
        events = Event.objects.filter(Q(stream__in=streams) | Q(topic__in=streams))
        head = events.aggregate(last=Max("id"))["last"] or 0
    return max(head, pruned_through())


def positions(streams: set[str]) -> tuple[int, int]:
    """`(newest_event_id(), streams_head(streams))` in one statement, as a new subscription reads
    them: four statements through the ORM were a third of what a connect cost the server
    (docs/benchmarks.md). Both come from the statement's one snapshot, and ids commit in order,
    so the snapshot holds every event up to the newest id: the head is read no earlier than the
    newest id, which is what `StreamConsumer.op_subscribe` relies on."""
    events = connection.ops.quote_name(Event._meta.db_table)
    mark = connection.ops.quote_name(OutboxMark._meta.db_table)
    if streams:
        marks = ", ".join(["%s"] * len(streams))
        head = f"(SELECT MAX(id) FROM {events} WHERE stream IN ({marks}) OR topic IN ({marks}))"  # noqa: S608 - fixed text; values are parameters
    else:
        head = "NULL"
    sql = (
        f"SELECT (SELECT MAX(id) FROM {events}), {head},"  # noqa: S608 - fixed text; values are parameters
        f" (SELECT pruned_through FROM {mark} WHERE id = 1)"
    )
    names = sorted(streams)
    with prepared_cursor() as cursor:
        cursor.execute(sql, [*names, *names])
        newest, head_id, pruned = cursor.fetchone()
    pruned = pruned or 0
    return max(newest or 0, pruned), max(head_id or 0, pruned)


def events_after(
    streams: set[str], cursor: int, limit: int, skip_topics: frozenset[str] = frozenset()
) -> list[Event]:
    """Committed events of any of `streams` (as stream or topic) after `cursor`, in commit order,
    leaving out those of `skip_topics`."""
    if not streams:
        return []
    events = Event.objects.filter(Q(stream__in=streams) | Q(topic__in=streams), id__gt=cursor)
    if skip_topics:
        events = events.exclude(topic__in=skip_topics)
    return list(events.order_by("id")[:limit])


def events_after_global(cursor: int, limit: int) -> list[Event]:
    return list(Event.objects.filter(id__gt=cursor).order_by("id")[:limit])


def newest_event_id() -> int:
    newest = Event.objects.aggregate(last=Max("id"))["last"] or 0
    return max(newest, pruned_through())


def prune_events(*, older_than: dt.datetime, chunk: int = 10_000) -> int:
    """Delete the events written before `older_than`; returns how many.

    The mark moves first, in its own transaction: from then on a catch-up that starts below it
    answers `resync` (realtime.consumers reads the mark after the events it replays), so no
    subscriber is served a catch-up with a hole where pruned events were. The rows then go in
    chunks, each its own short transaction, so writers of new events never wait long.
    """
    cutoff = Event.objects.filter(created_at__lt=older_than).aggregate(last=Max("id"))["last"] or 0
    if not cutoff:
        return 0
    with transaction.atomic():
        mark, _ = OutboxMark.objects.select_for_update().get_or_create(pk=1)
        if cutoff > mark.pruned_through:
            mark.pruned_through = cutoff
            mark.pruned_at = timezone.now()
            mark.save(update_fields=["pruned_through", "pruned_at"])
    deleted = 0
    while True:
        ids = list(
            Event.objects.filter(id__lte=cutoff).order_by("id").values_list("id", flat=True)[:chunk]
        )
        if not ids:
            return deleted
        deleted += Event.objects.filter(id__in=ids).delete()[0]
