"""The per-process event hub: every event reaches each web process once, in commit order.

Publishing sends each outbox event to one channel-layer group that every process's hub has joined,
so a post costs one message per process, not one per subscriber. The hub puts the events back into
commit order (each carries the id of the event committed just before it), then hands each one to
the local connections subscribed to its stream.

Two things can go wrong on the way, and both are repaired from PostgreSQL, the source of truth:
- a message is lost (Redis restarted, a process crashed between commit and publish): a hole in the
  chain that does not fill within `GAP_WAIT` seconds is read from the outbox;
- nothing arrives at all: every `POLL` seconds the hub asks the outbox for anything newer.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import weakref
from collections import defaultdict
from typing import Any, Protocol

from realtime import channel, outbox, presence, verdicts
from realtime.db import in_sync_thread, in_worker

log = logging.getLogger(__name__)

GAP_WAIT = 0.25
POLL = 1.0
FETCH_LIMIT = 1000
# channels-redis forgets group members after a day; the hub rejoins well before that.
REJOIN_EVERY = 3600.0
# While Redis or PostgreSQL stays down, a reminder that it still is, at most this often.
OUTAGE_REMINDER_EVERY = 60.0
# The safety-net re-check waits this long after the first socket asks, so that the event that made
# the verdicts stale reaches every socket first and all of them are answered in one batch.
RECHECK_BATCH_WAIT = 0.1


class Outage:
    """The log of one thing the hub depends on failing: the first failure with its traceback,
    a reminder at most every `OUTAGE_REMINDER_EVERY` while it lasts, and the recovery.

    The hub retries every `POLL` seconds; logging every attempt wrote a traceback a second for as
    long as Redis was down, burying whatever else the process had to say."""

    def __init__(self, what: str, clock: Any = time.monotonic) -> None:
        self.what = what
        self.clock = clock
        self.since: float | None = None
        self.attempts = 0
        self.reminded_at = 0.0

    def failed(self) -> None:
        """Call from the `except` block of a failed attempt."""
        now = self.clock()
        self.attempts += 1
        if self.since is None:
            self.since = self.reminded_at = now
            log.exception("event hub: %s failed; retrying every %.0f s", self.what, POLL)
        elif now - self.reminded_at >= OUTAGE_REMINDER_EVERY:
            self.reminded_at = now
            log.error(
                "event hub: %s still failing (%d attempts in %.0f s): %s",
                self.what,
                self.attempts,
                now - self.since,
                _last_error(),
            )

    def worked(self) -> None:
        if self.since is None:
            return
        log.warning(
            "event hub: %s works again, after %d failed attempts in %.1f s",
            self.what,
            self.attempts,
            self.clock() - self.since,
        )
        self.since = None
        self.attempts = 0


def _last_error() -> str:
    error = sys.exc_info()[1]
    return f"{type(error).__name__}: {error}" if error is not None else "(no exception)"


class Listener(Protocol):
    def offer(self, event: dict[str, Any]) -> None:
        """Take one event without blocking; a full queue is the listener's to handle."""

    def stale_question(self) -> verdicts.Question | None:
        """The subscriptions whose access verdict went stale since asked (None: none now)."""


class Hub:
    def __init__(self) -> None:
        self.index: dict[str, set[Listener]] = defaultdict(set)
        self.buffer: dict[int, dict[str, Any]] = {}
        self.watermark = 0
        self.gap_since: float | None = None
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.channel_name = ""
        # Every local connection, by user id, for access changes that concern a user.
        self.connections: dict[int, set[Listener]] = defaultdict(set)
        # Connection ids with presence rows in this process, refreshed every REFRESH_EVERY.
        self.present: set[str] = set()
        self.refreshed_at = time.monotonic()
        self.polled_at = time.monotonic()
        # Listeners waiting for the batched safety-net re-check (realtime/verdicts.py).
        self.stale: set[Listener] = set()
        self.recheck_task: asyncio.Task[None] | None = None
        self.layer_outage = Outage("receiving from the channel layer")
        self.outbox_outage = Outage("reading the outbox")

    # --- registration, called by consumers on the event loop ---------------------------------

    async def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run(), name="tidings-hub")
        await self.ready.wait()

    def listen(self, source: str, listener: Listener) -> None:
        self.index[source].add(listener)

    def ignore(self, source: str, listener: Listener) -> None:
        listeners = self.index.get(source)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self.index[source]

    # --- the loop -------------------------------------------------------------------------------

    async def _run(self) -> None:
        self.channel_name = await channel.new_channel()
        joined_at = await self._join()
        self.watermark = await self._newest_event_id()
        self.ready.set()
        channel.deliver_here(self.take_local)
        while True:
            try:
                # After a failure Redis may be a fresh one that forgot the group: join again at
                # once, or no live message would reach this process before REJOIN_EVERY.
                if joined_at is None or time.monotonic() - joined_at > REJOIN_EVERY:
                    await channel.join_all_events(self.channel_name)
                    joined_at = time.monotonic()
                message = await channel.receive(self.channel_name, timeout=self._timeout())
                self.layer_outage.worked()
                if message is not None and message.get("type") == "presence":
                    await self._presence_changed(str(message["stream"]))
                elif message is not None:
                    self._take_message(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis down: the outbox (below) keeps delivering meanwhile.
                self.layer_outage.failed()
                joined_at = None
                await asyncio.sleep(POLL)
            try:
                await self._drain()
                await self._refresh_presence()
                self.outbox_outage.worked()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Database down: keep going; the outbox will fill the hole later.
                self.outbox_outage.failed()
                await asyncio.sleep(POLL)

    async def _join(self) -> float | None:
        """Join the all-events group; None when the channel layer is down (the loop retries).

        A process whose first socket arrives while Redis is down must still start: its sockets
        are served from the outbox meanwhile. Letting this raise killed the hub task before
        `ready` was set, and every later connect to the process waited for it forever."""
        try:
            await channel.join_all_events(self.channel_name)
        except Exception:
            log.exception("event hub: joining the channel layer failed; serving from the outbox")
            return None
        return time.monotonic()

    async def _newest_event_id(self) -> int:
        """The outbox's newest id, asked until the database answers (it is the watermark every
        later event is ordered against, so the hub cannot start without it)."""
        while True:
            try:
                newest = await in_sync_thread(outbox.newest_event_id)()
            except Exception:
                self.outbox_outage.failed()
                await asyncio.sleep(POLL)
            else:
                self.outbox_outage.worked()
                return newest

    def attach(self, user_id: int, listener: Listener) -> None:
        self.connections[user_id].add(listener)

    def detach(self, user_id: int, listener: Listener) -> None:
        listeners = self.connections.get(user_id)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self.connections[user_id]

    def recheck_later(self, listener: Listener) -> None:
        """Re-check `listener`'s stale subscriptions soon, together with every other's."""
        self.stale.add(listener)
        if self.recheck_task is None or self.recheck_task.done():
            loop = asyncio.get_running_loop()
            self.recheck_task = loop.create_task(self._recheck_stale(), name="tidings-recheck")

    async def _recheck_stale(self) -> None:
        # Sockets that go stale while a batch is being decided join `stale` without a task of
        # their own (this one is not done): loop until none is left waiting.
        while self.stale:
            await self._recheck_batch()

    async def _recheck_batch(self) -> None:
        await asyncio.sleep(RECHECK_BATCH_WAIT)
        listeners, self.stale = list(self.stale), set()
        asked = [(listener, listener.stale_question()) for listener in listeners]
        asked_now = [(listener, q) for listener, q in asked if q is not None]
        if not asked_now:
            return
        try:
            answers = await in_worker(verdicts.decide)([q for _listener, q in asked_now])
        except Exception:
            # Database down: ask again at the next delivery rather than deciding blind.
            log.exception("event hub: the access re-check failed; asking again later")
            for listener, question in asked_now:
                listener.offer({"stream": "", "verdict": None, "question": question})
            return
        for (listener, question), verdict in zip(asked_now, answers, strict=True):
            listener.offer({"stream": "", "verdict": verdict, "question": question})

    def _access_changed(self, user_ids: list[int] | None, ended_session: str) -> None:
        targets = self.connections.keys() if user_ids is None else user_ids
        for user_id in list(targets):
            for listener in tuple(self.connections.get(user_id, ())):
                listener.offer({"access": True, "stream": "", "session": ended_session})

    async def _presence_changed(self, stream: str) -> None:
        if not self.index.get(stream):
            return
        people = await in_sync_thread(presence.viewers)(stream)
        event = {"presence": people, "stream": stream, "type": "presence.changed"}
        for listener in tuple(self.index.get(stream, ())):
            listener.offer(event)

    async def _refresh_presence(self) -> None:
        if time.monotonic() - self.refreshed_at < presence.REFRESH_EVERY:
            return
        self.refreshed_at = time.monotonic()
        await in_sync_thread(presence.refresh)(sorted(self.present))

    def _timeout(self) -> float:
        if self.gap_since is None:
            return POLL
        return max(0.0, GAP_WAIT - (time.monotonic() - self.gap_since))

    def _take_message(self, message: dict[str, Any]) -> None:
        if message.get("type") == "access":
            # An access message that came back through Redis after its local copy makes the
            # same sockets re-check once more: harmless, and rare (an access change).
            self._access_changed(message.get("users"), message.get("session") or "")
        elif message.get("type") == "events":
            for event in message["events"]:  # a batch, in commit order
                self._take(event)
        elif message.get("type") == "event":
            self._take(message["event"])

    def take_local(self, message: dict[str, Any]) -> None:
        """A message sent by this process (realtime.channel.deliver_here). Its events are
        dispatched now if they follow what was dispatched last, else buffered until the chain
        fills (through the channel layer, or from the outbox after GAP_WAIT)."""
        if not self.ready.is_set():
            return  # not following the chain yet: the channel layer's copy will do
        self._take_message(message)
        self._dispatch_contiguous()
        if self.buffer and self.gap_since is None:
            self.gap_since = time.monotonic()

    def _take(self, event: dict[str, Any]) -> None:
        if event["id"] > self.watermark:
            # A copy: the consumers keep the event's frames on it (encoded once per stream), and
            # a local message is the very dict the channel layer then sends to the other
            # processes, which must not carry them.
            self.buffer[event["id"]] = dict(event)

    async def _drain(self) -> None:
        self._dispatch_contiguous()
        if not self.buffer:
            self.gap_since = None
            if self._timeout() == POLL:
                await self._poll_outbox()
            return
        now = time.monotonic()
        if self.gap_since is None:
            self.gap_since = now
        elif now - self.gap_since >= GAP_WAIT:
            await self._fill_from_outbox()

    def _dispatch_contiguous(self) -> None:
        """Dispatch buffered events while each one's predecessor is the last dispatched."""
        by_prev = {event.get("prev") or 0: event for event in self.buffer.values()}
        while self.watermark in by_prev:
            event = by_prev.pop(self.watermark)
            del self.buffer[event["id"]]
            self._dispatch(event)

    async def _poll_outbox(self) -> None:
        # At most once a POLL: a busy hub hears of new events from the channel layer anyway.
        if time.monotonic() - self.polled_at < POLL:
            return
        self.polled_at = time.monotonic()
        newest = await in_sync_thread(outbox.newest_event_id)()
        if newest > self.watermark:
            await self._fill_from_outbox()

    async def _fill_from_outbox(self) -> None:
        events = await in_sync_thread(outbox.events_after_global)(self.watermark, FETCH_LIMIT)
        for event in events:
            if event.id > self.watermark:
                buffered = self.buffer.pop(event.id, None)
                self._dispatch(buffered if buffered is not None else event.as_message())
        self.buffer = {k: v for k, v in self.buffer.items() if k > self.watermark}
        self.gap_since = time.monotonic() if self.buffer else None
        self._dispatch_contiguous()

    def _dispatch(self, event: dict[str, Any]) -> None:
        self.watermark = event["id"]
        listeners = set(self.index.get(event["stream"], ()))
        if event.get("topic"):
            listeners.update(self.index.get(event["topic"], ()))
        for listener in listeners:
            listener.offer(event)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def get_hub() -> Hub:
    """The hub of the running event loop (one per process in production; one per test loop)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub()
    return hub
