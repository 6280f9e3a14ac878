"""A subscription reads its sources and head in one trip, before it listens to the hub
(realtime/consumers.py, `op_subscribe`): what passes the hub in between still arrives."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async

from feed.actions import post_activity
from realtime import streams
from tests.conftest import Cast
from tests.realtime.test_consumer import communicator, session_cookie, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def posted_while_reading(cast: Cast) -> Iterator[list[int]]:
    """A stream kind `probe:<account id>` reading that account's events, whose last read (its
    muted topics, asked after the head) posts on the account once: the post commits after the
    subscription's head was read and reaches the process's hub before the subscription listens.
    Yields the ids of what it posted."""
    posted: list[int] = []

    def skips(user: Any, arg: int | None) -> frozenset[str]:
        if not posted:
            # From the worker thread of the subscription's trip: published as a web request's
            # post is, handed to this loop's hub at once.
            activity = post_activity(author=cast.teammate, account=cast.account, body="between")
            posted.append(activity.pk)
        return frozenset()

    kind = streams.StreamKind(
        kind="probe",
        takes_arg=True,
        can_see=lambda user, arg: True,
        sources=lambda user, arg: frozenset({f"account:{arg}"}),
        static_sources=True,
        skips=skips,
    )
    streams.register(kind)
    try:
        yield posted
    finally:
        streams._KINDS.pop("probe", None)


async def test_an_event_passing_the_hub_while_a_subscription_reads_is_still_delivered(
    cast: Cast, posted_while_reading: list[int]
) -> None:
    comm = communicator(cookie=await session_cookie(cast.owner))
    connected, _ = await comm.connect()
    assert connected
    subscribed = await subscribe(comm, f"probe:{cast.account.pk}")
    assert subscribed["type"] == "subscribed", subscribed
    event = await comm.receive_json_from(timeout=2)
    assert event["type"] == "activity.created" and event["data"]["id"] == posted_while_reading[0]
    assert int(event["cursor"]) > int(subscribed["cursor"])
    await comm.send_json_to({"op": "ping"})
    assert await comm.receive_json_from(timeout=2) == {"type": "pong"}  # and only once
    await comm.disconnect()


async def test_a_quiet_subscription_reads_once_and_gets_what_follows(cast: Cast) -> None:
    """Nothing passed the hub while it read: `subscribed` with the head, then live events."""
    comm = communicator(cookie=await session_cookie(cast.owner))
    connected, _ = await comm.connect()
    assert connected
    subscribed = await subscribe(comm, f"account:{cast.account.pk}")
    assert subscribed["type"] == "subscribed"
    await comm.send_json_to({"op": "ping"})
    assert await comm.receive_json_from(timeout=2) == {"type": "pong"}
    after = await database_sync_to_async(post_activity)(
        author=cast.teammate, account=cast.account, body="after"
    )
    event = await comm.receive_json_from(timeout=2)
    assert event["data"]["id"] == after.pk and int(event["cursor"]) > int(subscribed["cursor"])
    await comm.disconnect()
