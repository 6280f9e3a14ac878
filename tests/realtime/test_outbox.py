"""The outbox's after-commit publish: one channel-layer message per write, sent first."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

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
    # Registered before the post's event, run after it; one message for all of the post's rows.
    assert seen_after_commit == ["access", "events"]
