"""The outbox is pruned: old events go, and cursors that needed them get `resync`, never a hole."""

from __future__ import annotations

import datetime as dt

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from feed.actions import post_activity
from feed.streams import account_stream_cursor
from realtime import outbox
from realtime.models import Event
from realtime.tasks import prune_events
from tests.conftest import Cast
from tests.realtime.test_consumer import communicator, session_cookie, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


def _age_all_events(days: int) -> int:
    """Make every event so far `days` old; returns the newest id."""
    Event.objects.update(created_at=timezone.now() - dt.timedelta(days=days))
    return outbox.newest_event_id()


def test_old_events_are_pruned_and_new_ones_kept(cast: Cast) -> None:
    post_activity(author=cast.owner, account=cast.account, body="old")
    old_newest = _age_all_events(days=40)
    post_activity(author=cast.owner, account=cast.account, body="new")
    assert prune_events() >= 1  # the default retention is 30 days
    assert not Event.objects.filter(id__lte=old_newest).exists()
    assert Event.objects.filter(id__gt=old_newest).exists()
    assert outbox.pruned_through() == old_newest
    assert prune_events() == 0  # nothing left that old


async def test_a_cursor_below_the_pruned_events_is_told_to_resync(cast: Cast) -> None:
    @database_sync_to_async
    def prune_between() -> tuple[str, int]:
        before = account_stream_cursor(cast.account.pk)
        post_activity(author=cast.owner, account=cast.account, body="pruned away")
        pruned = _age_all_events(days=40)
        post_activity(author=cast.owner, account=cast.account, body="kept")
        outbox.prune_events(older_than=timezone.now() - dt.timedelta(days=30))
        return before, pruned

    before, pruned = await prune_between()
    comm = communicator(cookie=await session_cookie(cast.owner))
    connected, _ = await comm.connect()
    assert connected
    stream = f"account:{cast.account.pk}"
    # Its catch-up would start with "kept" and silently miss "pruned away".
    await subscribe(comm, stream, since=before)
    assert await comm.receive_json_from(timeout=2) == {"type": "resync", "stream": stream}
    # A cursor at the mark still catches up with what came after it.
    assert (await subscribe(comm, stream, since=str(pruned)))["type"] == "subscribed"
    assert (await comm.receive_json_from(timeout=2))["data"]["body"] == "kept"
    assert await comm.receive_nothing(timeout=0.2)
    await comm.disconnect()


async def test_a_quiet_stream_whose_events_were_all_pruned_still_resumes(cast: Cast) -> None:
    """Its head would be 0, which the mark answers with `resync`: pages would reload forever."""

    @database_sync_to_async
    def prune_everything() -> str:
        post_activity(author=cast.owner, account=cast.account, body="long ago")
        _age_all_events(days=40)
        outbox.prune_events(older_than=timezone.now() - dt.timedelta(days=30))
        assert not Event.objects.exists()
        return account_stream_cursor(cast.account.pk)

    cursor = await prune_everything()
    assert int(cursor) == await database_sync_to_async(outbox.pruned_through)() > 0
    comm = communicator(cookie=await session_cookie(cast.owner))
    connected, _ = await comm.connect()
    assert connected
    subscribed = await subscribe(comm, f"account:{cast.account.pk}", since=cursor)
    assert subscribed["type"] == "subscribed"
    await database_sync_to_async(post_activity)(
        author=cast.owner, account=cast.account, body="after the pruning"
    )
    assert (await comm.receive_json_from(timeout=2))["data"]["body"] == "after the pruning"
    await comm.disconnect()
