"""The outbox's after-commit publish: one channel-layer message per write, sent first."""

from __future__ import annotations

import asyncio
import threading
import time
from functools import partial
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connection, transaction

from feed.actions import post_activity
from realtime.channel import all_events_group, announce_access_changed
from tests.conftest import Cast

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_post_is_published_before_other_after_commit_work_in_channel_order(
    cast: Cast,
) -> None:
    """A post registers its notification's Celery task before its event (actions record events
    last), yet followers must not wait for that task to be queued: the event is published first.
    Channel-layer hooks keep their order: an access change announced before the event still
    reaches the hubs before it (feed.actions.history.move_activity relies on it)."""
    layer = get_channel_layer()
    assert layer is not None
    listener = await layer.new_channel("test.")
    await layer.group_add(all_events_group(), listener)

    async def waiting() -> list[str]:
        """The types of the messages that reached `listener` so far."""
        types = []
        while True:
            try:
                async with asyncio.timeout(0.5):
                    types.append(str((await layer.receive(listener))["type"]))
            except TimeoutError:
                return types

    seen_after_commit: list[str] = []

    def post() -> Any:
        with transaction.atomic():
            transaction.on_commit(partial(announce_access_changed, [cast.owner.pk]))
            transaction.on_commit(lambda: seen_after_commit.extend(async_to_sync(waiting)()))
            return post_activity(author=cast.owner, account=cast.account, body="First out")

    await database_sync_to_async(post)()
    # Registered before the post's event, run after it. On PostgreSQL one message carries all of
    # the post's rows; elsewhere (SQLite, the embedded demo) each row is its own message.
    post_messages = ["events"] if connection.vendor == "postgresql" else ["event", "event"]
    assert seen_after_commit == ["access", *post_messages]


def test_events_recorded_together_are_stored_as_one_chain_in_one_statement(
    cast: Cast,
) -> None:
    """`record_events` writes its rows by hand (`realtime_append_events`: the lock, the
    predecessor, the ids and the INSERT in one statement): what is stored is what the ORM would
    have stored, JSON included."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from realtime import outbox
    from realtime.models import Event

    if connection.vendor != "postgresql":
        pytest.skip("the hand-written INSERT is PostgreSQL's path")
    before = outbox.newest_event_id()
    data = {"id": 7, "body": "Grüße ✓ \u200b", "nested": {"list": [1, None, True]}}
    with transaction.atomic(), CaptureQueriesContext(connection) as statements:
        made = outbox.record_events(
            [
                ("account:1", "activity.created", data, "thread:7"),
                ("team:1", "activity.created", data, ""),
            ]
        )
    assert len(statements) == 1
    stored = list(Event.objects.filter(id__gt=before).order_by("id"))
    assert [(e.id, e.prev_id, e.stream, e.topic, e.type, e.data) for e in stored] == [
        (made[0].id, before or None, "account:1", "thread:7", "activity.created", data),
        (made[1].id, made[0].id, "team:1", "", "activity.created", data),
    ]
    assert stored[0].created_at == made[0].created_at is not None


def test_a_writer_waiting_for_the_sequencer_chains_to_the_event_it_waited_for(
    cast: Cast,
) -> None:
    """B asks for the lock while A holds it; once A commits, B's event follows A's.

    The predecessor is read inside `realtime_append_events` after the lock is granted: read in
    the statement that waited (one snapshot, taken before A committed), B would chain to the
    event before A's, and every hub would take A's event for lost."""
    from realtime import outbox
    from realtime.models import Event

    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises its writers from their first statement")
    waiting_sql = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND classid = 0 AND objid = %s AND objsubid = 1 AND database = (SELECT oid"
        " FROM pg_database WHERE datname = current_database())"
    )
    a_recorded, b_waiting = threading.Event(), threading.Event()
    made: dict[str, Event] = {}

    def writer(name: str, before_commit: threading.Event | None) -> None:
        try:
            with transaction.atomic():
                (made[name],) = outbox.record_events([(f"user:{name}", "t", {"w": name}, "")])
                if before_commit is not None:
                    a_recorded.set()
                    assert before_commit.wait(10), "B never queued for the lock"
        finally:
            connection.close()

    a = threading.Thread(target=writer, args=("a", b_waiting))
    b = threading.Thread(target=writer, args=("b", None))
    a.start()
    assert a_recorded.wait(10)
    b.start()
    try:
        deadline = time.monotonic() + 10
        with connection.cursor() as cursor:  # B queued behind A's lock: a condition, polled
            while True:
                cursor.execute(waiting_sql, [outbox.SEQUENCER_LOCK_KEY & 0xFFFFFFFF])
                if cursor.fetchone()[0] == 1:
                    break
                assert time.monotonic() < deadline, "B never waited for the sequencer"
                cursor.execute("SELECT pg_sleep(0.005)")  # PostgreSQL's clock, between polls
    finally:
        b_waiting.set()  # also on failure, so that A does not wait in vain
        a.join()
        b.join()
    stored = {e.stream: e for e in Event.objects.filter(id__in=[made["a"].id, made["b"].id])}
    assert stored["user:b"].prev_id == stored["user:a"].id == made["b"].prev_id
    assert stored["user:b"].id > stored["user:a"].id


def test_after_pruning_left_no_event_the_next_chains_to_the_mark(cast: Cast) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from realtime import outbox

    with transaction.atomic():
        outbox.record_events([("user:1", "t", {"n": 1}, "")])
    outbox.prune_events(older_than=timezone.now() + timedelta(seconds=1))
    mark = outbox.pruned_through()
    assert mark > 0
    with transaction.atomic():
        single = outbox.record_event(stream="user:1", type="t", data={"n": 2})
        batch = outbox.record_events([("user:1", "t", {"n": 3}, ""), ("user:2", "t", {}, "")])
    assert (single.prev_id, batch[0].prev_id, batch[1].prev_id) == (mark, single.id, batch[0].id)


def test_a_batch_larger_than_one_insert_is_stored_whole(cast: Cast) -> None:
    from django.db import connection

    from crm.sqlrows import ROWS_PER_INSERT
    from realtime import outbox
    from realtime.models import Event

    if connection.vendor != "postgresql":
        pytest.skip("the hand-written INSERT is PostgreSQL's path")
    before = outbox.newest_event_id()
    count = ROWS_PER_INSERT + 1
    with transaction.atomic():
        outbox.record_events([("user:1", "follow.changed", {"n": n}, "") for n in range(count)])
    stored = list(
        Event.objects.filter(id__gt=before).order_by("id").values_list("id", "prev_id", "data")
    )
    assert [data["n"] for _id, _prev, data in stored] == list(range(count))
    assert [prev for _id, prev, _data in stored[1:]] == [pk for pk, _prev, _data in stored[:-1]]


def test_positions_are_the_newest_id_and_the_head_of_the_streams(cast: Cast) -> None:
    """`outbox.positions`, one statement, answers what `newest_event_id` and `streams_head` do."""
    from realtime import outbox
    from realtime.models import OutboxMark

    account = f"account:{cast.account.pk}"
    west = f"account:{cast.west_account.pk}"
    assert outbox.positions({account}) == (outbox.newest_event_id(), outbox.streams_head({account}))
    post_activity(author=cast.owner, account=cast.account, body="east")
    east_head = outbox.streams_head({account})
    post_activity(author=cast.admin, account=cast.west_account, body="west")
    newest = outbox.newest_event_id()
    assert newest > east_head > 0
    assert outbox.positions({account}) == (newest, east_head)
    assert outbox.positions({account, west}) == (newest, newest)
    assert outbox.positions(set())[0] == newest
    assert outbox.positions({"account:0"}) == (newest, 0)
    # A pruning mark above every event: both positions are the mark.
    OutboxMark.objects.update_or_create(pk=1, defaults={"pruned_through": newest + 10})
    assert outbox.positions({account}) == (newest + 10, newest + 10)
