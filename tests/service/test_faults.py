"""Delivery under faults, over the real stack (daphne subprocesses, PostgreSQL, Redis).

Each test shows one promise of DESIGN.md section 4 and RELIABILITY.md ("Delivery and faults",
"Changes bite at once") where it is hardest to keep:

- transactions that commit in another order than their rows got ids;
- a channel layer that loses every message, and a Redis that is killed and started again;
- two web processes sharing PostgreSQL and Redis;
- a user who loses access, is deactivated or logs out while subscribed.

"Exactly once, in order" is checked the same way everywhere: the frames a client receives are the
posts, in the order they were made (each post is answered 201 before the next is sent, so the
order of the posts is the commit order), and after them a fresh post is the very next frame and a
ping is answered: no duplicate came in between.
"""

from __future__ import annotations

import asyncio
import http.client
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token
from websockets.exceptions import ConnectionClosed

from crm import actions as crm_actions
from crm.models import Account
from feed import actions as feed_actions
from feed import events as feed_events
from feed.models import Activity
from realtime import outbox
from realtime.hub import POLL
from realtime.models import Event
from tests import servers, services
from tests.conftest import Cast
from tests.service.conftest import (
    RECV_SECONDS,
    Api,
    LiveServer,
    Socket,
    Sockets,
    StartServer,
    assert_activity_event,
    in_db_thread,
)

pytestmark = pytest.mark.service

# Per expected frame when the channel layer is out of the picture: the hub's outbox poll
# (every POLL = 1 s) brings each event well within this; it only turns a hang into a failure.
POLL_RECV_SECONDS = 5.0
# How long a socket is watched for a frame that must not come; only used after the same event
# has reached another client of the same server, i.e. after it was dispatched.
SILENCE_SECONDS = 0.5
# How long the threads of a transaction wait for each other before giving up (never waited out
# when the code works).
THREAD_WAIT_SECONDS = 10.0
# Posts made while waiting for an access re-check are this far apart (traffic, not a wait).
POST_EVERY_SECONDS = 0.2
# Access changes are announced to open sockets at once (realtime.channel.announce_access_changed):
# the cut-off must come within this bound, delivery and clock slack included.
ACCESS_RECHECK_SECONDS = 1.0
# Delivery and clock slack on top of ACCESS_RECHECK_SECONDS.
RECHECK_SLACK_SECONDS = 0.75

# Sessions of this database waiting for the event sequencer (a one-bigint advisory lock: its
# high half is classid, its low half objid, and objsubid is 1).
WAITING_FOR_SEQUENCER = """
    SELECT count(*) FROM pg_locks
    WHERE locktype = 'advisory' AND NOT granted AND classid = 0 AND objid = %s AND objsubid = 1
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


async def expect_posts(socket: Socket, stream: str, posts: Sequence[dict[str, Any]]) -> int:
    """The next frames are exactly `posts`' events, in order; returns the last cursor."""
    cursors: list[int] = []
    for post in posts:
        frame = await socket.recv(POLL_RECV_SECONDS)
        cursors.append(assert_activity_event(frame, stream, post))
    assert cursors == sorted(set(cursors)), f"cursors not strictly increasing: {cursors}"
    return cursors[-1]


async def expect_nothing_else(
    clients: Sequence[Socket], stream: str, poster: Api, token: str, account_id: int
) -> None:
    """No duplicate is pending: a fresh post is every client's very next frame, then a pong."""
    sentinel = await poster.post(token, account_id, "Sentinel: nothing came before me")
    for client in clients:
        assert_activity_event(await client.recv(POLL_RECV_SECONDS), stream, sentinel)
        await client.ping()


async def expect_silence(client: Socket) -> None:
    with pytest.raises(TimeoutError):
        message = await asyncio.wait_for(client.connection.recv(), SILENCE_SECONDS)
        pytest.fail(f"received {message!r}")
    await client.ping()  # still connected: the silence was not a dead socket


async def subscribed(client: Socket, stream: str, since: str | None = None) -> str:
    reply = await client.subscribe(stream, since)
    assert reply["type"] == "subscribed", reply
    assert reply["stream"] == stream, reply
    if since is not None:
        assert reply["cursor"] == since, reply
    return str(reply["cursor"])


@dataclass
class Closed:
    code: int | None


async def frame_or_close(client: Socket) -> dict[str, Any] | Closed:
    try:
        return await client.recv()
    except ConnectionClosed as closed:
        return Closed(closed.rcvd.code if closed.rcvd is not None else None)


def other_redis_db(url: str) -> str:
    """The same Redis server, another database: nothing published on one reaches the other."""
    parts = urlsplit(url)
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{15 if db != 15 else 14}"))


@pytest.fixture
def tokens(transactional_db: None, cast: Cast) -> dict[str, str]:
    """API tokens of the cast by username, made directly: the token endpoint runs the (slow on
    purpose) password hasher on every call, and test_live_delivery.py already goes through it."""
    users = [cast.owner, cast.teammate, cast.outsider, cast.support]
    return {user.username: Token.objects.create(user=user).key for user in users}


# --- a. transactions that commit out of order ---------------------------------------------------


async def test_a_transaction_that_commits_after_a_later_one_is_not_skipped(
    transactional_db: None, cast: Cast, tokens: dict[str, str], live_api: Api, sockets: Sockets
) -> None:
    """A takes its activity id first, B posts and commits while A is open, then A commits.

    Cursors follow commit order, not id order: a client holding B's cursor still gets A's event.
    """
    services.require_postgres()
    account, stream = cast.account, f"account:{cast.account.pk}"
    alice_token = tokens["alice"]
    live = await sockets.open(ticket=await live_api.ticket(alice_token))
    start_cursor = await subscribed(live, stream)

    a_has_its_id = threading.Event()
    b_committed = threading.Event()

    def transaction_a() -> int:
        with transaction.atomic():
            activity = Activity.objects.create(
                account=account,
                kind=Activity.Kind.POST,
                author=cast.owner,
                body="A: id taken first, committed last",
                occurred_at=timezone.now(),
            )
            a_has_its_id.set()
            if not b_committed.wait(THREAD_WAIT_SECONDS):
                raise RuntimeError("transaction B never committed")
            feed_events.activity_created(activity)
        return activity.pk

    def transaction_b() -> int:
        if not a_has_its_id.wait(THREAD_WAIT_SECONDS):
            raise RuntimeError("transaction A never took its id")
        try:
            activity = feed_actions.post_activity(
                author=cast.teammate, account=account, body="B: id taken second, committed first"
            )
        finally:
            b_committed.set()  # also on failure, so that A does not wait in vain
        return activity.pk

    a_id, b_id = await asyncio.gather(in_db_thread(transaction_a), in_db_thread(transaction_b))
    assert a_id < b_id, "A's activity was meant to take its id first"

    def account_events() -> dict[int, int]:
        rows = Event.objects.filter(stream=stream, id__gt=int(start_cursor)).order_by("id")
        return {row.data["id"]: row.id for row in rows}

    event_of = await in_db_thread(account_events)
    assert sorted(event_of) == sorted([a_id, b_id]), event_of
    a_cursor, b_cursor = event_of[a_id], event_of[b_id]
    assert b_cursor < a_cursor, f"cursors must follow commit order: B {b_cursor}, A {a_cursor}"

    # Live: B then A, each once.
    first, second = await live.recv(), await live.recv()
    assert assert_activity_event(first, stream) == b_cursor and first["data"]["id"] == b_id
    assert assert_activity_event(second, stream) == a_cursor and second["data"]["id"] == a_id

    # Resuming with B's cursor (the newest a client could have seen before A committed) gives A.
    resumed = await sockets.open(ticket=await live_api.ticket(alice_token))
    await subscribed(resumed, stream, since=str(b_cursor))
    frame = await resumed.recv()
    assert assert_activity_event(frame, stream) == a_cursor and frame["data"]["id"] == a_id

    # From before both: B then A.
    replayed = await sockets.open(ticket=await live_api.ticket(alice_token))
    await subscribed(replayed, stream, since=start_cursor)
    assert [assert_activity_event(await replayed.recv(), stream) for _ in range(2)] == [
        b_cursor,
        a_cursor,
    ]

    await expect_nothing_else([live, resumed, replayed], stream, live_api, alice_token, account.pk)


async def test_a_writer_holding_a_cursor_holds_back_later_writers_until_it_commits(
    transactional_db: None, cast: Cast, tokens: dict[str, str], live_api: Api, sockets: Sockets
) -> None:
    """The other way round: A records its event (takes its cursor) and stays open; B's post must
    wait for A's commit, so that B's cursor cannot be handed out while A's may still come."""
    services.require_postgres()
    account, stream = cast.account, f"account:{cast.account.pk}"
    alice_token = tokens["alice"]
    live = await sockets.open(ticket=await live_api.ticket(alice_token))
    start_cursor = await subscribed(live, stream)

    a_recorded = threading.Event()
    b_starting = threading.Event()
    b_committed = threading.Event()

    def transaction_a() -> tuple[int, bool, int]:
        with transaction.atomic():
            activity = feed_actions.log_activity(
                actor=cast.owner, account=account, kind=Activity.Kind.POST, body="A: first cursor"
            )
            a_recorded.set()
            if not b_starting.wait(THREAD_WAIT_SECONDS):
                raise RuntimeError("transaction B never started")
            b_got_through = b_committed.wait(SILENCE_SECONDS)
            with connection.cursor() as cursor:
                cursor.execute(WAITING_FOR_SEQUENCER, [outbox.SEQUENCER_LOCK_KEY])
                (waiting,) = cursor.fetchone() or (0,)
        return activity.pk, b_got_through, waiting

    def transaction_b() -> int:
        if not a_recorded.wait(THREAD_WAIT_SECONDS):
            raise RuntimeError("transaction A never recorded its event")
        b_starting.set()
        try:
            activity = feed_actions.post_activity(
                author=cast.teammate, account=account, body="B: had to wait for A"
            )
        finally:
            b_committed.set()
        return activity.pk

    (a_id, b_got_through, waiting), b_id = await asyncio.gather(
        in_db_thread(transaction_a), in_db_thread(transaction_b)
    )
    assert not b_got_through, "B committed while A held the sequencer"
    assert waiting == 1, f"B was not waiting for the sequencer lock ({waiting} waiting)"

    frames = [await live.recv(), await live.recv()]
    assert [frame["data"]["id"] for frame in frames] == [a_id, b_id], frames
    cursors = [assert_activity_event(frame, stream) for frame in frames]
    assert int(start_cursor) < cursors[0] < cursors[1], cursors
    await expect_nothing_else([live], stream, live_api, alice_token, account.pk)


# --- b. every channel-layer message lost ------------------------------------------------------


async def test_clients_converge_when_every_channel_layer_message_is_lost(
    transactional_db: None,
    cast: Cast,
    tokens: dict[str, str],
    live_api: Api,
    start_server: StartServer,
    sockets: Sockets,
) -> None:
    """A web process on another Redis database never hears a publication: only its outbox poll
    can deliver. Posts go through the session's daphne, which publishes on the configured one."""
    redis_url = services.require_redis()
    deaf = start_server("deaf", redis_url=other_redis_db(redis_url))
    assert deaf.health["redis"] == "ok", deaf.health  # connected; only the messages are missing
    deaf_api = Api(deaf)
    account_id, stream = cast.account.pk, f"account:{cast.account.pk}"
    alice_token, bob_token, carol_token = tokens["alice"], tokens["bob"], tokens["carol"]

    alice = await sockets.open(ticket=await deaf_api.ticket(alice_token), server=deaf)
    carol = await sockets.open(ticket=await deaf_api.ticket(carol_token), server=deaf)
    start_cursor = await subscribed(alice, stream)
    await subscribed(carol, stream)

    posts = [await live_api.post(bob_token, account_id, f"Unannounced #{n}") for n in range(5)]
    await expect_posts(alice, stream, posts)
    await expect_posts(carol, stream, posts)

    # Catching up on the same deaf process, from before the posts.
    late = await sockets.open(ticket=await deaf_api.ticket(alice_token), server=deaf)
    await subscribed(late, stream, since=start_cursor)
    await expect_posts(late, stream, posts)

    await expect_nothing_else([alice, carol, late], stream, live_api, bob_token, account_id)


# --- c. Redis killed and restarted ------------------------------------------------------------


async def test_redis_killed_and_restarted_mid_stream(
    transactional_db: None,
    cast: Cast,
    tokens: dict[str, str],
    tmp_path: Path,
    start_server: StartServer,
    sockets: Sockets,
) -> None:
    """Nothing stored is lost, the service degrades (503, delivery from the outbox) and then
    recovers without a restart: live delivery again, on the same socket.

    The posts go through a second process: a process hands its own posts to its own sockets
    without Redis (realtime.channel.deliver_here), so posting through `web` would not show
    whether `web` hears Redis again."""
    account_id, stream = cast.account.pk, f"account:{cast.account.pk}"
    with servers.running_redis(tmp_path / "redis") as redis:
        web = start_server("web", redis_url=redis.url())
        api = Api(start_server("poster", redis_url=redis.url()))
        alice_token, bob_token = tokens["alice"], tokens["bob"]
        alice = await sockets.open(ticket=await api.ticket(alice_token), server=web)
        await subscribed(alice, stream)

        before = [await api.post(bob_token, account_id, f"Before the crash #{n}") for n in (1, 2)]
        await expect_posts(alice, stream, before)

        await asyncio.to_thread(redis.kill)
        health = await asyncio.to_thread(web.healthz)
        assert health.status == 503 and health.body["redis"] == "down", health

        # Writes keep working: the outbox has them; publishing fails and is only logged. The
        # hub delivers them from the outbox while Redis is still down.
        during = [await api.post(bob_token, account_id, f"Redis is down #{n}") for n in (1, 2)]
        await expect_posts(alice, stream, during)
        health = await asyncio.to_thread(web.healthz)
        assert health.status == 503, health

        await asyncio.to_thread(redis.start)
        health = await asyncio.to_thread(web.healthz)
        assert health.status == 200 and health.body["redis"] == "ok", health

        after = [await api.post(bob_token, account_id, f"Redis is back #{n}") for n in (1, 2)]
        await expect_posts(alice, stream, after)

        # Live again (the hub is back in the group on the new Redis), not only the outbox poll:
        # a post made right after the previous one arrived would wait almost a whole POLL.
        latencies = []
        for n in range(3):
            post = await api.post(bob_token, account_id, f"Live again #{n}")
            posted_at = time.monotonic()
            await expect_posts(alice, stream, [post])
            latencies.append(time.monotonic() - posted_at)
        assert sorted(latencies)[1] < POLL / 2, f"delivered by the outbox poll only: {latencies}"

        # Same socket all along, no reconnect: everything once, in order.
        await expect_nothing_else([alice], stream, api, bob_token, account_id)


# --- d. two web processes ---------------------------------------------------------------------


async def test_two_web_processes_share_events_and_cursors(
    transactional_db: None,
    cast: Cast,
    tokens: dict[str, str],
    live_api: Api,
    start_server: StartServer,
    sockets: Sockets,
) -> None:
    second = start_server("web2", redis_url=services.require_redis())
    second_api = Api(second)
    account_id, stream = cast.account.pk, f"account:{cast.account.pk}"
    alice_token, bob_token = tokens["alice"], tokens["bob"]

    # Posted through process 1, heard on process 2.
    on_second = await sockets.open(ticket=await second_api.ticket(alice_token), server=second)
    await subscribed(on_second, stream)
    on_first = await sockets.open(ticket=await live_api.ticket(alice_token))
    await subscribed(on_first, stream)
    crossing = await live_api.post(bob_token, account_id, "Posted on process 1")
    await expect_posts(on_second, stream, [crossing])
    cursor = await expect_posts(on_first, stream, [crossing])

    # Leaves process 1; what is posted meanwhile (through either) is served by process 2.
    await on_first.close()
    missed = [
        await live_api.post(bob_token, account_id, "Missed, posted on process 1"),
        await second_api.post(bob_token, account_id, "Missed, posted on process 2"),
    ]
    await expect_posts(on_second, stream, missed)
    moved = await sockets.open(ticket=await second_api.ticket(alice_token), server=second)
    await subscribed(moved, stream, since=str(cursor))
    await expect_posts(moved, stream, missed)

    await expect_nothing_else([on_second, moved], stream, live_api, bob_token, account_id)


# --- e, f. access revoked, user deactivated, logged out -------------------------------------------


async def post_until_cut_off(
    *,
    poster: Api,
    token: str,
    account_id: int,
    stream: str,
    witness: Socket,
    cut_off: Socket,
    changed_at: float,
) -> tuple[dict[str, Any] | Closed, float]:
    """Post until `cut_off` gets something other than the post: what it got, and when.

    Every post reaches `witness`. Until then each post also reaches `cut_off`, which is allowed
    only while the verdict of its last access check may still be trusted: within
    ACCESS_RECHECK_SECONDS of the change (made at `changed_at`, time.monotonic()).
    """
    bound = ACCESS_RECHECK_SECONDS + RECHECK_SLACK_SECONDS
    for n in range(100):
        post = await poster.post(token, account_id, f"After the change #{n}")
        assert_activity_event(await witness.recv(), stream, post)
        got = await frame_or_close(cut_off)
        elapsed = time.monotonic() - changed_at
        if isinstance(got, Closed) or got.get("type") != "activity.created":
            assert elapsed < bound, f"cut off only after {elapsed:.2f}s: {got!r}"
            return got, elapsed
        assert_activity_event(got, stream, post)
        assert elapsed < ACCESS_RECHECK_SECONDS + 0.5, (
            f"an event reached the user {elapsed:.2f}s after the change: {got!r}"
        )
        await asyncio.sleep(POST_EVERY_SECONDS)
    raise AssertionError("never cut off")


async def test_revoked_access_stops_events_on_an_open_socket(
    transactional_db: None, cast: Cast, tokens: dict[str, str], live_api: Api, sockets: Sockets
) -> None:
    account_id, stream = cast.account.pk, f"account:{cast.account.pk}"
    # erin (West) sees the East account only through an account-team grant.
    await in_db_thread(
        crm_actions.grant_account_access, actor=cast.admin, account=cast.account, user=cast.outsider
    )
    alice_token, bob_token, erin_token = tokens["alice"], tokens["bob"], tokens["erin"]
    alice = await sockets.open(ticket=await live_api.ticket(alice_token))
    erin = await sockets.open(ticket=await live_api.ticket(erin_token))
    await subscribed(alice, stream)
    await subscribed(erin, stream)
    granted = await live_api.post(bob_token, account_id, "erin is on the account team")
    await expect_posts(alice, stream, [granted])
    await expect_posts(erin, stream, [granted])

    def revoke() -> None:
        account = Account.objects.get(pk=account_id)
        crm_actions.revoke_account_access(actor=cast.admin, account=account, user=cast.outsider)

    await in_db_thread(revoke)
    revoked_at = time.monotonic()

    got, _elapsed = await post_until_cut_off(
        poster=live_api,
        token=bob_token,
        account_id=account_id,
        stream=stream,
        witness=alice,
        cut_off=erin,
        changed_at=revoked_at,
    )
    assert isinstance(got, dict), got
    assert got["type"] == "error" and got["code"] == "not_found", got
    assert got.get("stream") == stream, got

    # From then on: alice hears every post, erin nothing, and she cannot subscribe again.
    later = await live_api.post(bob_token, account_id, "erin is off the account team")
    await expect_posts(alice, stream, [later])
    await expect_silence(erin)
    refused = await erin.subscribe(stream, since=None)
    assert refused["type"] == "error" and refused["code"] == "not_found", refused
    reply = await live_api.call("GET", f"/api/v1/accounts/{account_id}/", token=erin_token)
    assert reply.status == 404, reply


async def test_deactivated_user_is_disconnected(
    transactional_db: None, cast: Cast, tokens: dict[str, str], live_api: Api, sockets: Sockets
) -> None:
    account_id, stream = cast.account.pk, f"account:{cast.account.pk}"
    alice_token, bob_token = tokens["alice"], tokens["bob"]
    alice = await sockets.open(ticket=await live_api.ticket(alice_token))
    bob = await sockets.open(ticket=await live_api.ticket(bob_token))
    await subscribed(alice, stream)
    await subscribed(bob, stream)

    await in_db_thread(
        crm_actions.set_user_active, actor=cast.admin, user=cast.teammate, is_active=False
    )
    deactivated_at = time.monotonic()

    got, _elapsed = await post_until_cut_off(
        poster=live_api,
        token=alice_token,
        account_id=account_id,
        stream=stream,
        witness=alice,
        cut_off=bob,
        changed_at=deactivated_at,
    )
    assert got == Closed(4401), got
    # And the next HTTP call is refused.
    reply = await live_api.call("POST", "/api/v1/realtime/ticket/", token=bob_token)
    assert reply.status in (401, 403), reply


class BrowserSession:
    """Logs in through the `/login/` form like a browser, keeping the cookies it is given."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.cookies: dict[str, str] = {}

    def _request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["X-CSRFToken"] = self.cookies.get("csrftoken", "")
        conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=RECV_SECONDS)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode(errors="replace")
            for header in response.headers.get_all("Set-Cookie") or []:
                jar: SimpleCookie = SimpleCookie()
                jar.load(header)
                for name, morsel in jar.items():
                    self.cookies[name] = morsel.value
        finally:
            conn.close()
        return response.status, text

    def log_in(self, username: str) -> None:
        status, page = self._request("GET", "/login/")
        assert status == 200, (status, page[:300])
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token is not None, page[:500]
        form = {
            "username": username,
            "password": f"pw-{username}",
            "csrfmiddlewaretoken": token.group(1),
        }
        status, page = self._request("POST", "/login/", form)
        assert status == 302 and "sessionid" in self.cookies, (status, page[:300])

    def log_out(self) -> None:
        status, page = self._request("POST", "/logout/", {})
        assert status == 302, (status, page[:300])

    def cookie_header(self) -> dict[str, str]:
        return {"Cookie": f"sessionid={self.cookies['sessionid']}"}


async def test_logging_out_disconnects_the_browser_socket(
    transactional_db: None,
    cast: Cast,
    tokens: dict[str, str],
    live_api: Api,
    daphne_server: LiveServer,
    sockets: Sockets,
) -> None:
    account_id, stream = cast.account.pk, f"account:{cast.account.pk}"
    alice_token = tokens["alice"]
    alice = await sockets.open(ticket=await live_api.ticket(alice_token))
    await subscribed(alice, stream)
    browser = BrowserSession(daphne_server)
    await asyncio.to_thread(browser.log_in, "bob")
    bob = await sockets.open(origin=daphne_server.http_url, headers=browser.cookie_header())
    await subscribed(bob, stream)
    hello = await live_api.post(alice_token, account_id, "Bob is logged in")
    await expect_posts(alice, stream, [hello])
    await expect_posts(bob, stream, [hello])

    await asyncio.to_thread(browser.log_out)
    logged_out_at = time.monotonic()

    got, _elapsed = await post_until_cut_off(
        poster=live_api,
        token=alice_token,
        account_id=account_id,
        stream=stream,
        witness=alice,
        cut_off=bob,
        changed_at=logged_out_at,
    )
    assert got == Closed(4401), got
