"""Live delivery over the real stack: daphne, PostgreSQL and the Redis channel layer.

Clients are what an API integration would be: a token from `/api/v1/auth/token/`, a single-use
ticket from `/api/v1/realtime/ticket/`, then `/ws/?ticket=...` without an Origin header
(DESIGN.md section 4). Posts go through the REST API of the same daphne process, so an event
travels outbox -> on_commit -> Redis group -> consumer -> socket exactly as in production.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import Cast
from tests.service.conftest import Api, LiveServer, Sockets, assert_activity_event

pytestmark = pytest.mark.service

# How long the outsider's socket is watched for an event that must not come. Only used after the
# event has reached the owner, i.e. after it was published to the channel layer.
SILENCE_SECONDS = 0.5


async def test_post_reaches_a_subscriber_live_and_never_an_outsider(
    transactional_db: None, cast: Cast, live_api: Api, sockets: Sockets
) -> None:
    account_id = cast.account.pk
    stream = f"account:{account_id}"
    alice_token, bob_token, erin_token = await asyncio.gather(
        live_api.token("alice"), live_api.token("bob"), live_api.token("erin")
    )

    alice = await sockets.open(ticket=await live_api.ticket(alice_token))
    subscribed = await alice.subscribe(stream)
    assert subscribed["type"] == "subscribed", subscribed
    assert subscribed["stream"] == stream
    assert subscribed["cursor"].isdigit(), subscribed

    erin = await sockets.open(ticket=await live_api.ticket(erin_token))
    refused = await erin.subscribe(stream)
    assert refused["type"] == "error", refused
    assert refused["code"] == "not_found", refused
    assert refused.get("stream") == stream, refused
    assert refused["detail"], refused

    activity = await live_api.post(bob_token, account_id, "Call went well, sending the quote.")

    event = await alice.recv()
    cursor = assert_activity_event(event, stream, activity)
    assert cursor > int(subscribed["cursor"])
    assert event["data"]["author"]["username"] == "bob", event
    # Exactly once: nothing else was queued for alice before her pong.
    await alice.ping()

    # The event has been published (alice has it); erin, refused, must not get it.
    with pytest.raises(TimeoutError):
        message = await asyncio.wait_for(erin.connection.recv(), SILENCE_SECONDS)
        pytest.fail(f"the outsider received {message!r}")
    await erin.ping()  # still connected: the silence was not a dead socket


async def test_resubscribing_with_the_last_cursor_delivers_missed_events_once_in_order(
    transactional_db: None, cast: Cast, live_api: Api, sockets: Sockets
) -> None:
    account_id = cast.account.pk
    stream = f"account:{account_id}"
    alice_token, bob_token = await asyncio.gather(live_api.token("alice"), live_api.token("bob"))

    first = await sockets.open(ticket=await live_api.ticket(alice_token))
    subscribed = await first.subscribe(stream)
    assert subscribed["type"] == "subscribed", subscribed
    seen = await live_api.post(bob_token, account_id, "Before the disconnect")
    last_cursor = assert_activity_event(await first.recv(), stream, seen)
    await first.close()

    # Posted one after the other while alice is away.
    missed = [await live_api.post(bob_token, account_id, f"While away #{n}") for n in range(3)]

    # A ticket is single-use: reconnecting takes a fresh one.
    second = await sockets.open(ticket=await live_api.ticket(alice_token))
    resumed = await second.subscribe(stream, since=str(last_cursor))
    assert resumed == {"type": "subscribed", "stream": stream, "cursor": str(last_cursor)}

    cursors = [last_cursor]
    for activity in missed:
        cursors.append(assert_activity_event(await second.recv(), stream, activity))
    assert cursors == sorted(set(cursors)), f"cursors not strictly increasing: {cursors}"

    # No duplicate of the catch-up follows, and live delivery carries on after it: the very next
    # frame is the next post.
    after = await live_api.post(bob_token, account_id, "Back online")
    assert assert_activity_event(await second.recv(), stream, after) > cursors[-1]
    await second.ping()


async def test_a_ticket_opens_one_connection_only(
    transactional_db: None, cast: Cast, live_api: Api, sockets: Sockets
) -> None:
    ticket = await live_api.ticket(await live_api.token("alice"))

    first = await sockets.open(ticket=ticket)
    await first.ping()
    await first.close()

    again = await sockets.open(ticket=ticket)
    assert await again.close_code() == 4401


async def test_a_ticket_with_a_foreign_origin_is_refused(
    transactional_db: None, cast: Cast, live_api: Api, sockets: Sockets
) -> None:
    ticket = await live_api.ticket(await live_api.token("alice"))

    socket = await sockets.open(ticket=ticket, origin="http://evil.example")
    assert await socket.close_code() == 4403


@pytest.mark.parametrize(
    ("ticket", "same_origin", "expected"),
    [
        # No ticket means cookie authentication, which needs an allowed Origin; the origin check
        # comes first, so a bare client (no ticket, no cookie, no Origin) gets 4403, not 4401.
        pytest.param(None, False, 4403, id="no-ticket-no-cookie-no-origin"),
        # Same case from the page's own origin: the origin passes, the missing user does not.
        pytest.param(None, True, 4401, id="no-ticket-no-cookie-same-origin"),
        pytest.param("not-a-ticket", False, 4401, id="unknown-ticket"),
    ],
)
async def test_a_connection_without_credentials_is_refused(
    daphne_server: LiveServer,
    sockets: Sockets,
    ticket: str | None,
    same_origin: bool,
    expected: int,
) -> None:
    origin = daphne_server.http_url if same_origin else None
    socket = await sockets.open(ticket=ticket, origin=origin)
    assert await socket.close_code() == expected
