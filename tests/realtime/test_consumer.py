"""The /ws/ consumer through `WebsocketCommunicator`: auth, origin, protocol, catch-up."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import Client

from config.asgi import application
from crm.models import User
from feed.actions import post_activity
from realtime.channel import all_events_group, publish_message
from realtime.hub import POLL, get_hub
from realtime.models import Event
from realtime.tickets import issue_ticket
from tests.conftest import Cast

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = b"http://testserver"


@database_sync_to_async
def session_cookie(user: User) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def communicator(
    *, cookie: bytes | None = None, origin: bytes | None = ORIGIN, query: str = ""
) -> WebsocketCommunicator:
    headers = [(b"host", b"testserver")]
    if origin is not None:
        headers.append((b"origin", origin))
    if cookie is not None:
        headers.append((b"cookie", cookie))
    path = "/ws/" + (f"?{query}" if query else "")
    return WebsocketCommunicator(application, path, headers=headers)


async def close_code(comm: WebsocketCommunicator) -> int:
    connected, _ = await comm.connect()
    assert connected  # accepted only so the client can read the close code
    message = await comm.receive_output(timeout=2)
    assert message["type"] == "websocket.close"
    await comm.wait()
    return int(message["code"])


@pytest.fixture
async def alice_socket(cast: Cast) -> AsyncIterator[WebsocketCommunicator]:
    comm = communicator(cookie=await session_cookie(cast.owner))
    connected, _ = await comm.connect()
    assert connected
    yield comm
    await comm.disconnect()


async def subscribe(comm: WebsocketCommunicator, stream: str, since: Any = None) -> dict[str, Any]:
    await comm.send_json_to({"op": "subscribe", "stream": stream, "since": since})
    return await comm.receive_json_from(timeout=2)


async def test_no_session_and_no_ticket_is_closed_4401(cast: Cast) -> None:
    assert await close_code(communicator()) == 4401


@pytest.mark.parametrize(
    "origin",
    [
        b"http://evil.example",
        b"null",
        None,
        b"https://testserver",
        b"http://testserver:8080",
        b"http://testserver.evil.example",
        b"not a url",
    ],
)
async def test_cookie_connection_from_a_bad_origin_is_closed_4403(
    cast: Cast, origin: bytes | None
) -> None:
    cookie = await session_cookie(cast.owner)
    assert await close_code(communicator(cookie=cookie, origin=origin)) == 4403


async def test_ticket_connects_without_an_origin_once(cast: Cast) -> None:
    ticket, _ = await database_sync_to_async(issue_ticket)(user=cast.owner)
    comm = communicator(origin=None, query=f"ticket={ticket}")
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"op": "ping"})
    assert await comm.receive_json_from(timeout=2) == {"type": "pong"}
    await comm.disconnect()
    assert await close_code(communicator(origin=None, query=f"ticket={ticket}")) == 4401


async def test_ticket_with_a_foreign_origin_is_closed_4403(cast: Cast) -> None:
    ticket, _ = await database_sync_to_async(issue_ticket)(user=cast.owner)
    comm = communicator(origin=b"http://evil.example", query=f"ticket={ticket}")
    assert await close_code(comm) == 4403


async def test_ticket_of_a_deactivated_user_is_refused(cast: Cast) -> None:
    ticket, _ = await database_sync_to_async(issue_ticket)(user=cast.owner)
    cast.owner.is_active = False
    await database_sync_to_async(cast.owner.save)(update_fields=["is_active"])
    assert await close_code(communicator(origin=None, query=f"ticket={ticket}")) == 4401


async def test_unknown_ticket_is_closed_4401(cast: Cast) -> None:
    assert await close_code(communicator(origin=None, query="ticket=forged")) == 4401


async def test_subscriber_receives_a_post_live(
    cast: Cast, alice_socket: WebsocketCommunicator
) -> None:
    stream = f"account:{cast.account.pk}"
    subscribed = await subscribe(alice_socket, stream)
    assert subscribed["type"] == "subscribed" and subscribed["stream"] == stream
    activity = await database_sync_to_async(post_activity)(
        author=cast.teammate, account=cast.account, body="Signed!"
    )
    event = await alice_socket.receive_json_from(timeout=2)
    assert event["type"] == "activity.created"
    assert event["stream"] == stream
    assert event["data"]["id"] == activity.pk
    assert event["data"]["body"] == "Signed!"
    assert int(event["cursor"]) > int(subscribed["cursor"])


async def test_hidden_stream_is_not_found_exactly_like_a_missing_one(cast: Cast) -> None:
    comm = communicator(cookie=await session_cookie(cast.outsider))
    await comm.connect()
    hidden = await subscribe(comm, f"account:{cast.account.pk}")
    missing = await subscribe(comm, "account:999999")
    assert hidden["code"] == missing["code"] == "not_found"
    assert hidden["detail"] == missing["detail"]
    await database_sync_to_async(post_activity)(
        author=cast.owner, account=cast.account, body="secret"
    )
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def test_since_cursor_catches_up_in_order(
    cast: Cast, alice_socket: WebsocketCommunicator
) -> None:
    for n in range(3):
        await database_sync_to_async(post_activity)(
            author=cast.owner, account=cast.account, body=f"#{n}"
        )
    subscribed = await subscribe(alice_socket, f"account:{cast.account.pk}", since="0")
    assert subscribed["cursor"] == "0"
    bodies = [(await alice_socket.receive_json_from(timeout=2))["data"]["body"] for _ in range(3)]
    assert bodies == ["#0", "#1", "#2"]
    assert await alice_socket.receive_nothing(timeout=0.2)


async def test_a_dropped_live_message_is_recovered_from_the_database(
    cast: Cast, alice_socket: WebsocketCommunicator
) -> None:
    stream = f"account:{cast.account.pk}"
    await subscribe(alice_socket, stream)

    @database_sync_to_async
    def two_events_published_only_second() -> list[Event]:
        # Write two outbox rows without their after-commit publish (as if the channel layer lost
        # the first message), then publish only the second: the hub sees the hole in the chain.
        with transaction.atomic():
            newest = Event.objects.order_by("-id").first()
            first = Event.objects.create(
                stream=stream,
                prev_id=newest.pk if newest else None,
                type="activity.created",
                data={"n": 1},
            )
            second = Event.objects.create(
                stream=stream, prev_id=first.pk, type="activity.created", data={"n": 2}
            )
        publish_message(second.as_message())
        return [first, second]

    first, second = await two_events_published_only_second()
    got = [await alice_socket.receive_json_from(timeout=2) for _ in range(2)]
    assert [g["cursor"] for g in got] == [str(first.pk), str(second.pk)]
    assert await alice_socket.receive_nothing(timeout=0.2)


async def test_a_post_reaches_its_own_process_sockets_without_the_channel_layer(
    cast: Cast, settings: Any
) -> None:
    """The process that commits a post hands it to its own hub directly (realtime.channel
    `deliver_here`), not only through the channel layer: here a layer that loses every message
    (each group member expires at once), so without the hand-over only the hub's outbox poll,
    once a POLL, would deliver, and each post below would wait for it."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"group_expiry": -3600},
        }
    }
    comm = communicator(cookie=await session_cookie(cast.owner))
    connected, _ = await comm.connect()
    assert connected
    try:
        await subscribe(comm, f"account:{cast.account.pk}")
        for n in range(4):
            posted_at = time.monotonic()
            await database_sync_to_async(post_activity)(
                author=cast.owner, account=cast.account, body=f"Local #{n}"
            )
            got = await comm.receive_json_from(timeout=2 * POLL)
            waited = time.monotonic() - posted_at
            assert got["data"]["body"] == f"Local #{n}"
            assert waited < POLL / 4, f"post #{n} came by the outbox poll ({waited:.2f} s)"
        assert await comm.receive_nothing(timeout=0.2)  # the outbox poll adds no second copy
    finally:
        await comm.disconnect()


async def test_what_a_local_fan_out_keeps_on_an_event_is_not_sent_to_the_other_processes(
    cast: Cast, settings: Any
) -> None:
    """A post's message goes to this process's hub first and then, the same dict, through the
    channel layer to the others; the consumers keep each event's encoded frames on the hub's
    copy only (they used to ride along to every other process inside the Redis message)."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    comm = communicator(cookie=await session_cookie(cast.owner))
    connected, _ = await comm.connect()
    assert connected
    try:
        await subscribe(comm, f"account:{cast.account.pk}")
        layer = get_channel_layer()
        other_process = await layer.new_channel()
        await layer.group_add(all_events_group(), other_process)
        await database_sync_to_async(post_activity)(
            author=cast.owner, account=cast.account, body="once framed"
        )
        got = await comm.receive_json_from(timeout=2)
        assert got["data"]["body"] == "once framed"
        sent = await asyncio.wait_for(layer.receive(other_process), timeout=2)
        events = sent["events"] if sent["type"] == "events" else [sent["event"]]
        assert any(event["data"]["body"] == "once framed" for event in events)
        for event in events:
            stored = await database_sync_to_async(Event.objects.get)(pk=event["id"])
            assert event == stored.as_message()  # no frames, nothing of this process
    finally:
        await comm.disconnect()


async def test_a_process_whose_first_socket_comes_while_redis_is_down_still_serves_it(
    cast: Cast, settings: Any
) -> None:
    """The hub joins the channel layer when it starts; with Redis down that failed, the hub task
    died before it was ready, and this connect (and every later one) waited forever. Now the
    socket is accepted and served from the outbox until the layer comes back."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # nothing listens on port 1
        }
    }
    comm = communicator(cookie=await session_cookie(cast.owner))
    connected, _ = await comm.connect(timeout=2 * POLL)
    assert connected
    try:
        await subscribe(comm, f"account:{cast.account.pk}")
        await database_sync_to_async(post_activity)(
            author=cast.owner, account=cast.account, body="while Redis is down"
        )
        got = await comm.receive_json_from(timeout=3 * POLL)
        assert got["data"]["body"] == "while Redis is down"
        assert await comm.receive_nothing(timeout=0.2)
    finally:
        await comm.disconnect()


async def test_duplicate_live_message_is_delivered_once(
    cast: Cast, alice_socket: WebsocketCommunicator
) -> None:
    await subscribe(alice_socket, f"account:{cast.account.pk}")
    await database_sync_to_async(post_activity)(
        author=cast.owner, account=cast.account, body="once"
    )
    await alice_socket.receive_json_from(timeout=2)
    event = await database_sync_to_async(Event.objects.get)(stream=f"account:{cast.account.pk}")
    await database_sync_to_async(publish_message)(event.as_message())
    assert await alice_socket.receive_nothing(timeout=0.3)


async def test_unsubscribe_stops_events(cast: Cast, alice_socket: WebsocketCommunicator) -> None:
    stream = f"account:{cast.account.pk}"
    await subscribe(alice_socket, stream)
    await alice_socket.send_json_to({"op": "unsubscribe", "stream": stream})
    assert (await alice_socket.receive_json_from(timeout=2))["type"] == "unsubscribed"
    await database_sync_to_async(post_activity)(author=cast.owner, account=cast.account, body="x")
    assert await alice_socket.receive_nothing(timeout=0.3)


async def test_cursor_from_the_future_asks_for_a_resync(
    cast: Cast, alice_socket: WebsocketCommunicator
) -> None:
    frame = await subscribe(alice_socket, f"account:{cast.account.pk}", since="999999999")
    assert frame == {"type": "resync", "stream": f"account:{cast.account.pk}"}


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_request"),
        ("[1, 2]", "bad_request"),
        ('{"op": "explode"}', "bad_request"),
        ('{"op": "stream_event", "event": {}}', "bad_request"),
        ('{"op": "subscribe", "stream": "account:1", "since": "abc"}', "bad_request"),
        ('{"op": "subscribe", "stream": "account:1", "since": true}', "bad_request"),
        ('{"op": "subscribe", "stream": "../etc"}', "not_found"),
        ('{"op": "subscribe", "stream": {"a": 1}}', "not_found"),
        ('{"op": "subscribe", "stream": "account"}', "not_found"),
        ('{"op": "unsubscribe", "stream": "account:1"}', "not_found"),
        (json.dumps({"op": "ping", "pad": "x" * 5000}), "bad_request"),
    ],
)
async def test_bad_messages_get_an_error_and_the_socket_lives_on(
    cast: Cast, alice_socket: WebsocketCommunicator, frame: str, code: str
) -> None:
    await alice_socket.send_to(text_data=frame)
    error = await alice_socket.receive_json_from(timeout=2)
    assert error["type"] == "error" and error["code"] == code and error["detail"]
    await alice_socket.send_json_to({"op": "ping"})
    assert await alice_socket.receive_json_from(timeout=2) == {"type": "pong"}


async def test_binary_frames_are_refused(cast: Cast, alice_socket: WebsocketCommunicator) -> None:
    await alice_socket.send_to(bytes_data=b"\x00\x01")
    assert (await alice_socket.receive_json_from(timeout=2))["code"] == "bad_request"


async def test_flooding_is_rate_limited(cast: Cast, alice_socket: WebsocketCommunicator) -> None:
    for _ in range(60):
        await alice_socket.send_json_to({"op": "ping"})
    frames = [await alice_socket.receive_json_from(timeout=2) for _ in range(60)]
    assert {
        "type": "error",
        "code": "rate_limited",
        "detail": "Too many messages; slow down.",
    } in frames


async def test_losing_access_ends_the_subscription_at_once(cast: Cast) -> None:
    from crm import actions

    await database_sync_to_async(actions.grant_account_access)(
        actor=cast.admin, account=cast.account, user=cast.outsider
    )
    comm = communicator(cookie=await session_cookie(cast.outsider))
    await comm.connect()
    stream = f"account:{cast.account.pk}"
    assert (await subscribe(comm, stream))["type"] == "subscribed"
    await database_sync_to_async(actions.revoke_account_access)(
        actor=cast.admin, account=cast.account, user=cast.outsider
    )
    # No post needed, and no periodic re-check: the revocation itself reaches the socket.
    frame = await comm.receive_json_from(timeout=1)
    assert frame["type"] == "error" and frame["code"] == "not_found" and frame["stream"] == stream
    await database_sync_to_async(post_activity)(author=cast.owner, account=cast.account, body="x")
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def test_new_owner_elsewhere_ends_the_old_teams_subscriptions(cast: Cast) -> None:
    from crm import actions

    comm = communicator(cookie=await session_cookie(cast.teammate))
    await comm.connect()
    await subscribe(comm, f"account:{cast.account.pk}")
    await database_sync_to_async(actions.update_account)(
        actor=cast.admin, account=cast.account, owner=cast.outsider, team=cast.west
    )
    frame = await comm.receive_json_from(timeout=1)
    assert frame["code"] == "not_found"
    await comm.disconnect()


async def test_logging_out_closes_the_socket_at_once(cast: Cast) -> None:
    cookie = await session_cookie(cast.owner)
    comm = communicator(cookie=cookie)
    await comm.connect()
    await subscribe(comm, f"account:{cast.account.pk}")

    @database_sync_to_async
    def log_out() -> None:
        client = Client()
        client.cookies["sessionid"] = cookie.decode().split("=", 1)[1]
        client.post("/logout/")

    await log_out()
    assert await comm.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}
    # Closed for its session, the socket has left the hub's index (no queue filling for nobody).
    assert not get_hub().index.get(f"account:{cast.account.pk}")


async def test_rate_limit_is_shared_by_a_users_sockets(cast: Cast) -> None:
    cookie = await session_cookie(cast.owner)
    first, second = communicator(cookie=cookie), communicator(cookie=cookie)
    await first.connect()
    await second.connect()
    for _ in range(30):
        await first.send_json_to({"op": "ping"})
        await second.send_json_to({"op": "ping"})
    frames = [await first.receive_json_from(timeout=2) for _ in range(30)]
    frames += [await second.receive_json_from(timeout=2) for _ in range(30)]
    assert sum(f.get("code") == "rate_limited" for f in frames) >= 15
    await first.disconnect()
    await second.disconnect()


async def test_a_user_holds_a_bounded_number_of_sockets(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    from realtime import consumers

    monkeypatch.setattr(consumers, "MAX_CONNECTIONS_PER_USER", 2)
    cookie = await session_cookie(cast.owner)
    open_ones = [communicator(cookie=cookie) for _ in range(2)]
    for comm in open_ones:
        await comm.connect()
    extra = communicator(cookie=cookie)
    await extra.connect()
    assert (await extra.receive_json_from(timeout=2))["code"] == "rate_limited"
    assert (await extra.receive_output(timeout=2)) == {"type": "websocket.close", "code": 4429}
    await open_ones[0].disconnect()
    again = communicator(cookie=cookie)
    await again.connect()
    await again.send_json_to({"op": "ping"})
    assert await again.receive_json_from(timeout=2) == {"type": "pong"}
    for comm in (open_ones[1], again):
        await comm.disconnect()
