"""The one door to the channel layer.

Every outbox event goes to a single group (`all_events_group()`), which each web process's hub joins
once; the hub fans events out to local connections (realtime/hub.py). Group names are built here
and never taken from a client. Nothing else in the code base touches the channel layer.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer
from django.db import connection

log = logging.getLogger(__name__)


def all_events_group() -> str:
    """The group every hub joins: one per database, since an event chain belongs to one database.

    Two deployments (or a test run and a developer's server) sharing one Redis then never see each
    other's events.
    """
    db = connection.settings_dict
    where = f"{db.get('HOST') or ''}:{db.get('PORT') or ''}/{db['NAME']}"
    return "tidings.events." + hashlib.sha1(where.encode(), usedforsecurity=False).hexdigest()[:16]


def _layer() -> BaseChannelLayer:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("CHANNEL_LAYERS has no default layer; see config/settings.py.")
    return layer


# Seconds a sync caller outside a web request waits for the channel layer to take a message.
PUBLISH_TIMEOUT = 5.0
_publisher: tuple[int, asyncio.AbstractEventLoop] | None = None
_publisher_lock = threading.Lock()


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """This process's long-lived loop for publishing from outside a web request (a fork gets its
    own: an event loop does not survive fork)."""
    global _publisher
    with _publisher_lock:
        if _publisher is None or _publisher[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="channel-publisher", daemon=True).start()
            _publisher = (os.getpid(), loop)
        return _publisher[1]


def _in_web_request() -> bool:
    main_loop_pid = getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None)
    return (
        main_loop_pid == os.getpid()
        and getattr(SyncToAsync.threadlocal, "main_event_loop", None) is not None
    )


# This process's hubs, by event loop: `take(message)` hands a message to the hub directly.
_local_hubs: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, Callable[[dict[str, Any]], None]
] = weakref.WeakKeyDictionary()


def deliver_here(take: Callable[[dict[str, Any]], None]) -> None:
    """Give messages sent on the running loop (a web request's post) to `take` at once.

    The hub registers itself. Through Redis, an event made by a request reached the hub of the
    very process that made it after a group_send and a receive (~2 ms measured at 100 followers,
    docs/benchmarks.md), and the request's thread, woken as the send completed, went on with its
    own work (the response, its Celery hooks) while the hub fanned out, both holding up each other
    on the GIL. Handed over directly, the local sockets are served while the group_send is on its
    way to the other processes' hubs. The hub drops the copy that comes back through Redis (its id
    is at or below what it has dispatched), and a message the channel layer loses is recovered
    from the outbox as before. Access changes take the same way, so that the local sockets see
    them in the order they were sent: an announcement made before an event is re-checked before
    that event is delivered.
    """
    _local_hubs[asyncio.get_running_loop()] = take


# Messages a process's requests may leave waiting for the channel layer (Redis stalled): past this
# they are dropped with a log line. Events come back from the outbox within a second; an access
# change is still caught by the consumers' periodic re-check.
SEND_BACKLOG_LIMIT = 10_000


class _InOrder:
    """A loop's messages for the channel layer, sent one after another in the order given.

    A request's thread hands its message over and goes on: it used to wait for the group_send
    (a few Redis round trips, measured at 4 ms of every post's answer on the benchmark, and
    the other processes' hubs get the message no later for the thread's waiting). One sender
    at a time keeps the order that a waiting thread kept: an access change announced before an
    event reaches the other hubs first (group_sends run side by side could overtake each
    other between their Redis calls).
    """

    def __init__(self) -> None:
        self.waiting: collections.deque[dict[str, Any]] = collections.deque()
        self.task: asyncio.Task[None] | None = None

    def send(self, message: dict[str, Any]) -> None:
        if len(self.waiting) >= SEND_BACKLOG_LIMIT:
            log.error("channel layer backlog full: dropped a %s message", message.get("type"))
            return
        self.waiting.append(message)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run(), name="tidings-send")

    async def _run(self) -> None:
        while self.waiting:
            message = self.waiting.popleft()
            try:
                await _layer().group_send(all_events_group(), message)
            except Exception:
                # Committed already: every hub recovers events from the outbox (publish_message).
                log.exception("could not send a %s message to the channel layer", message["type"])


_senders: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _InOrder] = (
    weakref.WeakKeyDictionary()
)


async def _send_everywhere(message: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    take = _local_hubs.get(loop)
    if take is not None:
        take(message)
    sender = _senders.get(loop)
    if sender is None:
        sender = _senders[loop] = _InOrder()
    sender.send(message)


def _group_send(message: dict[str, Any]) -> None:
    """group_send from sync code. In a web request, async_to_sync runs it on the server's loop:
    the events go to this process's hub on the way (`deliver_here`) and the request goes on
    while the message is sent to the other processes (`_InOrder`).
    Elsewhere (Celery tasks, commands) async_to_sync would build a new event loop, and with
    channels-redis a new Redis connection, for every message: measured at 19 ms each, the largest
    cost of an inbound email in the worker. Those callers share one long-lived loop instead, and
    wait until the layer has the message."""
    if _in_web_request():
        async_to_sync(_send_everywhere)(message)
        return
    sent = asyncio.run_coroutine_threadsafe(
        _layer().group_send(all_events_group(), message), _publisher_loop()
    )
    sent.result(timeout=PUBLISH_TIMEOUT)


def publish_message(message: dict[str, Any]) -> None:
    """Send one committed outbox event to every process (sync callers: actions after commit)."""
    try:
        _group_send({"type": "event", "event": message})
    except Exception:
        # The event is committed: every hub recovers it from the outbox. A broken channel layer
        # must not turn a committed write into an error for the writer.
        log.exception("could not publish event %s to the channel layer", message.get("id"))


# Events per channel-layer message when a batch is published: one group_send costs a few Redis
# round trips whatever it carries (measured ~3 ms per event sent one by one from the inbound
# worker), and a chunk keeps each message far below what Redis and the hubs handle comfortably.
EVENTS_PER_MESSAGE = 20


def publish_messages(messages: list[dict[str, Any]]) -> None:
    """`publish_message` for a batch of committed events: in order, a chunk per channel-layer
    message (`{"type": "events"}`, which every hub takes like that many single events)."""
    if not messages:
        return
    chunks = [
        {"type": "events", "events": messages[i : i + EVENTS_PER_MESSAGE]}
        for i in range(0, len(messages), EVENTS_PER_MESSAGE)
    ]
    try:
        for chunk in chunks:
            _group_send(chunk)
    except Exception:
        # Committed already: the hubs recover the events from the outbox (see publish_message).
        log.exception("could not publish %s events to the channel layer", len(messages))


def announce_access_changed(user_ids: list[int] | None, *, ended_session: str = "") -> None:
    """Tell every process to re-check these users' subscriptions now (None: everyone's).

    Called after commit by whatever narrows access: a revoked grant, a new owner, a deactivated
    user, a logout. Without it the consumers would still notice, but only at their next periodic
    re-check.
    """
    try:
        _group_send({"type": "access", "users": user_ids, "session": ended_session})
    except Exception:
        log.exception("could not announce an access change")


async def announce_presence(stream: str) -> None:
    """Tell every process that who is on `stream` changed (no outbox row: presence is ephemeral)."""
    try:
        await _layer().group_send(all_events_group(), {"type": "presence", "stream": stream})
    except Exception:
        log.exception("could not announce presence on %s", stream)


async def new_channel() -> str:
    return str(await _layer().new_channel("tidings.hub."))


async def join_all_events(channel_name: str) -> None:
    await _layer().group_add(all_events_group(), channel_name)


async def receive(channel_name: str, timeout: float) -> dict[str, Any] | None:
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that lands
    # as the message arrives, and the hub would then outlive its event loop.
    try:
        async with asyncio.timeout(timeout):
            return dict(await _layer().receive(channel_name))
    except TimeoutError:
        return None
