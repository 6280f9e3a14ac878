"""Presence: an account page shows who else has it open right now."""

from __future__ import annotations

from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from tests.conftest import Cast
from tests.realtime.test_consumer import communicator, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


async def open_page(user: Any, stream: str) -> WebsocketCommunicator:
    comm = communicator(cookie=await session_cookie(user))
    await comm.connect()
    await comm.send_json_to({"op": "subscribe", "stream": stream, "since": None, "presence": True})
    assert (await comm.receive_json_from(timeout=2))["type"] == "subscribed"
    return comm


async def viewers(comm: WebsocketCommunicator) -> list[str]:
    frame = await comm.receive_json_from(timeout=2)
    assert frame["type"] == "presence.changed"
    return [person["username"] for person in frame["data"]["viewers"]]


async def test_viewers_come_and_go(cast: Cast) -> None:
    stream = f"account:{cast.account.pk}"
    alice = await open_page(cast.owner, stream)
    assert await viewers(alice) == ["alice"]
    bob = await open_page(cast.teammate, stream)
    assert await viewers(bob) == ["alice", "bob"]
    assert await viewers(alice) == ["alice", "bob"]
    await bob.disconnect()
    assert await viewers(alice) == ["alice"]
    await alice.disconnect()


async def test_unsubscribing_leaves(cast: Cast) -> None:
    stream = f"account:{cast.account.pk}"
    alice = await open_page(cast.owner, stream)
    await viewers(alice)
    bob = await open_page(cast.teammate, stream)
    await viewers(bob)
    await viewers(alice)
    await bob.send_json_to({"op": "unsubscribe", "stream": stream})
    assert (await bob.receive_json_from(timeout=2))["type"] == "unsubscribed"
    assert await viewers(alice) == ["alice"]
    await alice.disconnect()
    await bob.disconnect()


async def test_clients_that_do_not_ask_are_neither_counted_nor_told(cast: Cast) -> None:
    stream = f"account:{cast.account.pk}"
    api_client = communicator(cookie=await session_cookie(cast.teammate))
    await api_client.connect()
    await api_client.send_json_to({"op": "subscribe", "stream": stream, "since": None})
    assert (await api_client.receive_json_from(timeout=2))["type"] == "subscribed"
    alice = await open_page(cast.owner, stream)
    assert await viewers(alice) == ["alice"]
    assert await api_client.receive_nothing(timeout=0.3)
    await alice.disconnect()
    await api_client.disconnect()


async def test_other_accounts_viewers_are_not_announced(cast: Cast) -> None:
    alice = await open_page(cast.owner, f"account:{cast.account.pk}")
    await viewers(alice)
    erin = await open_page(cast.outsider, f"account:{cast.west_account.pk}")
    assert await viewers(erin) == ["erin"]
    assert await alice.receive_nothing(timeout=0.3)
    await alice.disconnect()
    await erin.disconnect()
