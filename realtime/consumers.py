"""The `/ws/` consumer: authenticate, authorise each subscription, catch up, forward.

Protocol (docs/realtime.md, DESIGN.md section 4): the client sends `subscribe`, `unsubscribe` and
`ping` operations; the server answers `subscribed`, events, `resync`, `error` and `pong`.

Events come from the process's hub (realtime/hub.py) in commit order into a bounded queue; one task
per connection drains it. Catch-up and live delivery run under one lock, and an event at or below a
subscription's cursor is never sent again, so each event reaches the client exactly once, in order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from config.dbfaults import is_database_unavailable
from realtime import channel, outbox, presence, streams, verdicts
from realtime.auth import CLOSE_TRY_AGAIN, CLOSE_UNAUTHENTICATED, connection_is_valid
from realtime.backpressure import prepare, prepared_sender, send_buffer_probe
from realtime.db import DATABASE_AWAY, in_worker
from realtime.hub import Hub, get_hub

log = logging.getLogger(__name__)

MAX_FRAME_CHARS = 4096
MAX_SUBSCRIPTIONS = 100
# Whatever narrows access (a revoked grant, a new owner, deactivation, logout) is announced and
# re-checked at once (realtime.channel.announce_access_changed). As a safety net for changes that
# are not announced (a session that simply expires, a team's managers edited in the admin), each
# subscription is also re-checked at delivery when its last verdict is older than this.
ACCESS_RECHECK_SECONDS = 30.0
# Per-user rate limit, shared by all of a user's sockets in this process: a token bucket of
# client messages; and a cap on how many sockets one user may hold open in this process.
RATE_PER_SECOND = 20.0
RATE_BURST = 40.0
MAX_CONNECTIONS_PER_USER = 20
CLOSE_TOO_MANY_CONNECTIONS = 4429
# Events waiting for a slow client. Past this the client is dropped (close 4008) and resumes from
# its cursor when it reconnects, instead of growing memory or holding up the others.
QUEUE_LIMIT = 2000
CLOSE_TOO_SLOW = 4008
# A client may stay over TIDINGS_WS_SEND_BUFFER_BYTES this long (a burst it is still reading)...
SLOW_GRACE_SECONDS = 5.0
# ...but never over this many times the limit.
SLOW_HARD_FACTOR = 4


db = in_worker


def start_eagerly(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run `coroutine` now, on the caller's stack, up to its first real wait; finish it in a
    task from there (None: it completed at once).

    What Python 3.12's eager tasks do (the project runs on 3.11): a coroutine that never waits
    costs no task, no scheduling and no trip through the event loop. One that waits on a future
    goes on in a task that waits on that same future and then resumes it, exactly as a task
    would have; a cancellation of that task is thrown into the coroutine.
    """
    try:
        waiting = coroutine.send(None)
    except StopIteration:
        return None
    except Exception:
        # The caller is fanning out to many sockets: one failure must not stop the others.
        log.exception("a delivery failed")
        return None
    return asyncio.get_running_loop().create_task(_resume(coroutine, waiting))


async def _resume(coroutine: Coroutine[Any, Any, None], waiting: Any) -> None:
    while True:
        try:
            if waiting is None:
                await asyncio.sleep(0)  # a bare yield: give the loop one turn
            else:
                # What a task does with a future its coroutine yields: take the "blocking"
                # mark (set by the coroutine's await) before waiting on it.
                waiting._asyncio_future_blocking = False
                await waiting
        except BaseException as error:
            try:
                waiting = coroutine.throw(error)
            except StopIteration:
                return
            continue
        try:
            waiting = coroutine.send(None)
        except StopIteration:
            return


def parse_cursor(raw: object) -> int | None:
    """None for "from now on", else the cursor as a number; ValueError for anything else."""
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < 10**18:
        return raw
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 18:
        return int(raw)
    raise ValueError(f"not a cursor: {raw!r}")


def _sources_and_skips(
    kind: streams.StreamKind, user: Any, arg: int | None
) -> tuple[frozenset[str], frozenset[str]]:
    # One trip to a worker thread for both: each trip borrows a pooled connection.
    return kind.sources(user, arg), kind.skips(user, arg)


@dataclass(frozen=True)
class SubscriptionReads:
    """What a new subscription reads before it listens, in one trip to the worker pool."""

    sources: frozenset[str]
    skips: frozenset[str]
    # The outbox's newest id, read before `head`: every event the hub has dispatched with an id
    # above it may have been committed after `head` was read (see StreamConsumer.op_subscribe).
    newest: int
    # The newest cursor of `sources` (0 when not asked for).
    head: int


def _subscription_reads(
    kind: streams.StreamKind, user: Any, arg: int | None, *, with_head: bool
) -> SubscriptionReads | None:
    """Access, sources, the outbox's newest id and the stream's head, in one trip (None: the
    user may not see the stream). Each trip to the worker pool, with its pooled connection's
    health check, was a quarter of what each of the benchmark's 1,000 connections cost the
    server (docs/benchmarks.md); a subscription made three."""
    if not kind.can_see(user, arg):
        return None
    sources = kind.sources(user, arg)
    # The head is read no earlier than the newest id: the order op_subscribe relies on.
    newest, head = outbox.positions(set(sources) if with_head else set())
    return SubscriptionReads(sources, kind.skips(user, arg), newest, head)


def _replay(
    kind: streams.StreamKind, user: Any, sub: Subscription, limit: int
) -> tuple[list[dict[str, Any]], set[int], int]:
    """The events a catch-up reads (as messages), those of them the reader may no longer see
    (`StreamKind.withheld`), and the pruning mark, in one trip to the worker pool.

    The mark is read after the events: pruning moves it before it deletes, so events missing
    from this read because they were just pruned always come with a mark above the cursor."""
    events = [
        e.as_message() for e in outbox.events_after(set(sub.sources), sub.last, limit, sub.skips)
    ]
    withheld = kind.withheld(user, sub.arg, events) if kind.withheld and events else set()
    return events, withheld, outbox.pruned_through()


@dataclass
class TokenBucket:
    tokens: float = RATE_BURST
    updated_at: float = field(default_factory=time.monotonic)
    connections: int = 0

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(RATE_BURST, self.tokens + (now - self.updated_at) * RATE_PER_SECOND)
        self.updated_at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


# user id -> bucket; an entry lives while the user has a socket open in this process.
_buckets: dict[int, TokenBucket] = {}


@dataclass(eq=False)
class Subscription:
    name: str
    kind: streams.StreamKind
    arg: int | None
    last: int = 0
    sources: frozenset[str] = field(default_factory=frozenset)
    skips: frozenset[str] = field(default_factory=frozenset)
    checked_at: float = field(default_factory=time.monotonic)
    # Opted in with `"presence": true`: counted as a viewer and told who else is viewing.
    has_presence: bool = False


class StreamConsumer(AsyncWebsocketConsumer):
    # No channel-layer channel per connection: events arrive through the process's hub, so a
    # thousand sockets hold no Redis connections and cost no Redis messages of their own.
    channel_layer_alias = "tidings-none"

    async def connect(self) -> None:
        self.subscriptions: dict[str, Subscription] = {}
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self.lock = asyncio.Lock()
        self.pump: asyncio.Task[None] | None = None
        self.hub: Hub | None = None
        self.is_overflowing = False
        self.buffered = send_buffer_probe(self.base_send)
        self.send_prepared = prepared_sender(self.base_send)
        self.over_limit_since: float | None = None
        # Names of subscriptions waiting for the hub's batched access re-check.
        self.stale: set[str] = set()
        self.connection_id = uuid.uuid4().hex
        self.bucket: TokenBucket | None = None
        reject = self.scope.get("realtime_reject")
        await self.accept()
        if reject:
            # Accepted only so that the client can read the close code; nothing is read or sent.
            await self.close(code=reject)
            return
        bucket = _buckets.setdefault(self.scope["user"].pk, TokenBucket())
        if bucket.connections >= MAX_CONNECTIONS_PER_USER:
            await self.send_error("rate_limited", "Too many open connections for this user.")
            await self.close(code=CLOSE_TOO_MANY_CONNECTIONS)
            return
        bucket.connections += 1
        self.bucket = bucket
        self.hub = get_hub()
        await self.hub.start()
        self.hub.attach(self.scope["user"].pk, self)
        self.pump = asyncio.get_running_loop().create_task(self._pump())

    async def disconnect(self, code: int) -> None:
        bucket = getattr(self, "bucket", None)
        if bucket is not None:
            bucket.connections -= 1
            if bucket.connections <= 0:
                _buckets.pop(self.scope["user"].pk, None)
            self.bucket = None
        if getattr(self, "pump", None) is not None:
            self.pump.cancel()  # type: ignore[union-attr]
        subscriptions = list(getattr(self, "subscriptions", {}).values())
        self.subscriptions = {}
        if getattr(self, "hub", None) is not None:
            self.hub.detach(self.scope["user"].pk, self)  # type: ignore[union-attr]
        for sub in subscriptions:
            self._unlisten(sub)
        if self.hub is not None and self.connection_id in self.hub.present:
            self.hub.present.discard(self.connection_id)
            try:
                left = await db(presence.leave)(connection=self.connection_id)
            except DATABASE_AWAY as error:
                if not is_database_unavailable(error):
                    raise
                # The rows are no longer refreshed: they go stale (presence.STALE_AFTER).
                log.warning("WebSocket disconnect: presence not cleared: %s", error)
                return
            for stream in left:
                await channel.announce_presence(stream)

    # --- the hub's side ---------------------------------------------------------------------

    def offer(self, event: dict[str, Any]) -> None:
        if self.queue.empty() and not self.lock.locked() and not self.is_overflowing:
            # Nothing is waiting for this socket: deliver on the hub's stack instead of waking
            # the pump. With a task per socket, a post to 1,000 followers was 1,000 task
            # wake-ups and queue round trips before any frame left (docs/benchmarks.md). Under
            # daphne a delivery never waits, so it completes here; one that does wait (a
            # database call, a transport under flow control) goes on in a task of its own,
            # holding the lock, and the next events queue behind it in order.
            start_eagerly(self._handle_safely(event))
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            if not self.is_overflowing:
                self.is_overflowing = True
                asyncio.get_running_loop().create_task(self._drop_slow_client())

    async def _drop_slow_client(self) -> None:
        """Stop delivering at once (nothing more is buffered for this client) and close 4008; the
        client resumes from its last cursor when it reconnects."""
        self.is_overflowing = True
        for sub in list(self.subscriptions.values()):
            self._forget(sub.name)
        if self.hub is not None:
            self.hub.detach(self.scope["user"].pk, self)
        log.info("dropping a client that does not read (user %s)", self.scope["user"].pk)
        await self.close(code=CLOSE_TOO_SLOW, reason="too slow")

    def stale_question(self) -> verdicts.Question | None:
        names = [name for name in self.stale if name in self.subscriptions]
        self.stale = set()
        if not names:
            return None
        session = self.scope.get("session") if self.scope.get("auth_method") == "session" else None
        subs = [self.subscriptions[name] for name in names]
        return verdicts.Question(
            user=self.scope["user"],
            session=session,
            streams=tuple((sub.name, sub.kind, sub.arg) for sub in subs),
            asked_at=time.monotonic(),
        )

    async def _pump(self) -> None:
        while True:
            event = await self.queue.get()
            await self._handle_safely(event)

    async def _handle_safely(self, event: dict[str, Any]) -> None:
        try:
            await self._handle(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            # One bad event (or a database hiccup) must not end this connection's delivery:
            # the client is told to reload, which re-reads everything from the outbox.
            log.exception("could not deliver event %s", event.get("id"))
            for sub in list(self.subscriptions.values()):
                await self._resync(sub)

    async def _handle(self, event: dict[str, Any]) -> None:
        async with self.lock:
            if "presence" in event:
                await self._on_presence(event)
            elif "verdict" in event:
                await self._on_verdict(event["verdict"], event["question"])
            elif "access" in event:
                session = getattr(self.scope.get("session"), "session_key", None)
                if event.get("session") and event["session"] == session:
                    self._forget_all()
                    await self.close(code=CLOSE_UNAUTHENTICATED)
                    return
                await self._recheck_all()
            else:
                keys = {event["stream"], event.get("topic") or event["stream"]}
                for sub in [s for s in self.subscriptions.values() if keys & s.sources]:
                    await self._on_event(sub, event)

    async def _on_verdict(
        self, verdict: verdicts.Verdict | None, question: verdicts.Question
    ) -> None:
        """Apply the hub's batched re-check of `question` (None: it failed; ask again)."""
        asked = [self.subscriptions.get(name) for name, _kind, _arg in question.streams]
        # A subscription made after the question was asked has a verdict of its own.
        subs = [sub for sub in asked if sub is not None and sub.checked_at <= question.asked_at]
        if verdict is None:
            for sub in subs:
                sub.checked_at = 0.0
            return
        if not verdict.is_valid:
            self._forget_all()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        for sub in subs:
            if sub.name in verdict.lost:
                self._forget(sub.name)
                await self.send_error("not_found", "No such stream.", stream=sub.name)
            elif await self._refresh_sources(sub):
                await self._catch_up(sub)  # a newly followed account: its events since the cursor

    async def _recheck_all(self) -> None:
        """Access may have narrowed: check every subscription now, not at its next delivery."""
        for sub in list(self.subscriptions.values()):
            sub.checked_at = 0.0
            if not await self._still_allowed(sub) and not self.subscriptions:
                return

    async def _on_presence(self, event: dict[str, Any]) -> None:
        sub = self.subscriptions.get(event["stream"])
        if sub is not None and sub.has_presence:
            frame = {"type": event["type"], "stream": event["stream"]}
            await self.send_json({**frame, "data": {"viewers": event["presence"]}})

    async def _on_event(self, sub: Subscription, event: dict[str, Any]) -> None:
        if event["id"] <= sub.last or self.subscriptions.get(sub.name) is not sub:
            return  # already delivered by catch-up, or unsubscribed meanwhile
        if event.get("topic") and event["topic"] in sub.skips:
            return  # a muted thread
        if time.monotonic() - sub.checked_at >= ACCESS_RECHECK_SECONDS and self.hub is not None:
            # The safety net must not hold up delivery (a thousand sockets would re-check at
            # once): deliver, and let the hub re-check every stale socket in one batch
            # (realtime/verdicts.py). Announced changes are re-checked before any later event
            # (see _recheck_all).
            sub.checked_at = time.monotonic()
            self.stale.add(sub.name)
            self.hub.recheck_later(self)
        await self._deliver(sub, event)
        if event["type"] in sub.kind.refresh_on and await self._refresh_sources(sub):
            # Events of the new sources may have passed the hub while the sources were being
            # read; the outbox has them, in order with everything else after this event.
            await self._catch_up(sub)

    # --- client -> server -------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.bucket is None:
            return  # refused at connect: nothing is read
        if not self.bucket.take():
            await self.send_error("rate_limited", "Too many messages; slow down.")
            return
        content = self._parse(text_data)
        if isinstance(content, str):
            await self.send_error("bad_request", content)
            return
        op = content.get("op")
        if op in ("subscribe", "unsubscribe"):
            try:
                async with self.lock:
                    if op == "subscribe":
                        await self.op_subscribe(content)
                    else:
                        await self.op_unsubscribe(content)
            except DATABASE_AWAY as error:
                if not is_database_unavailable(error):
                    raise
                # Nothing can be read or checked: the client reconnects and resumes from its
                # cursors (the browser client does so with backoff), instead of a crash (1011).
                log.warning("WebSocket %s: the database is away: %s", op, error)
                self._forget_all()
                await self.close(code=CLOSE_TRY_AGAIN, reason="database unavailable")
        elif op == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.send_error(
                "bad_request", 'Unknown "op"; use subscribe, unsubscribe or ping.'
            )

    @staticmethod
    def _parse(text_data: str | None) -> dict[str, Any] | str:
        """The message as a dict, or the reason it is not one."""
        if text_data is None:
            return "Send JSON objects in text frames."
        if len(text_data) > MAX_FRAME_CHARS:
            return f"Messages are limited to {MAX_FRAME_CHARS} characters."
        try:
            content = json.loads(text_data)
        except ValueError:
            return "Messages must be JSON objects."
        return content if isinstance(content, dict) else "Messages must be JSON objects."

    async def op_subscribe(self, content: dict[str, Any]) -> None:
        name = content.get("stream")
        resolved = streams.resolve(name)
        if resolved is None or not isinstance(name, str):
            await self.send_error("not_found", "No such stream.", stream=name)
            return
        try:
            since = parse_cursor(content.get("since"))
        except ValueError:
            await self.send_error("bad_request", '"since" must be a cursor or null.', stream=name)
            return
        if name not in self.subscriptions and len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            detail = f"At most {MAX_SUBSCRIPTIONS} streams per connection."
            await self.send_error("bad_request", detail)
            return
        kind, arg = resolved
        user = self.scope["user"]
        read = await db(_subscription_reads)(kind, user, arg, with_head=since is None)
        if read is None:
            await self.send_error("not_found", "No such stream.", stream=name)
            return
        assert self.hub is not None  # noqa: S101 - set in connect() before any message is read
        self._forget(name)
        sub = Subscription(name, kind, arg)
        sub.has_presence = kind.has_presence and content.get("presence") is True
        self.subscriptions[name] = sub
        # From here on every event the hub dispatches reaches this subscription (behind the lock,
        # in order). The hub dispatches in id order, and ids are assigned in commit order, so an
        # event it dispatched before this line has an id at most its watermark. If that is at
        # most the newest id read above, every such event was committed before `head` and
        # `since` were judged, and nothing passed by unseen; otherwise the outbox is asked for
        # what came after the cursor (the copies also queued here are dropped by the cursor).
        self._use_sources(sub, read.sources, read.skips)
        may_have_passed = self.hub.watermark > read.newest
        if since is None:
            sub.last = read.head
            await self.send_json({"type": "subscribed", "stream": name, "cursor": str(sub.last)})
            if may_have_passed:
                await self._catch_up(sub)
        elif since > read.newest:
            await self._resync(sub)  # a cursor this server never handed out
            return
        else:
            sub.last = since
            await self.send_json({"type": "subscribed", "stream": name, "cursor": str(since)})
            await self._catch_up(sub)
        if sub.has_presence:
            await self._arrive(sub)

    async def _arrive(self, sub: Subscription) -> None:
        assert self.hub is not None  # noqa: S101 - set in connect() before any message is read
        await db(presence.arrive)(
            stream=sub.name, connection=self.connection_id, user=self.scope["user"]
        )
        self.hub.present.add(self.connection_id)
        await channel.announce_presence(sub.name)

    async def _depart(self, stream: str) -> None:
        try:
            await db(presence.leave)(connection=self.connection_id, stream=stream)
        except DATABASE_AWAY as error:
            if not is_database_unavailable(error):
                raise
            # The row is no longer refreshed: it goes stale (presence.STALE_AFTER).
            log.warning("WebSocket: presence on %s not cleared: %s", stream, error)
            return
        await channel.announce_presence(stream)

    async def op_unsubscribe(self, content: dict[str, Any]) -> None:
        name = content.get("stream")
        if not isinstance(name, str) or name not in self.subscriptions:
            await self.send_error("not_found", "Not subscribed to that stream.", stream=name)
            return
        self._forget(name)
        await self.send_json({"type": "unsubscribed", "stream": name})

    # --- internals ----------------------------------------------------------------------------

    async def _catch_up(self, sub: Subscription) -> None:
        limit = settings.TIDINGS_CATCHUP_LIMIT
        events, withheld, pruned = await db(_replay)(sub.kind, self.scope["user"], sub, limit + 1)
        if len(events) > limit or sub.last < pruned:
            await self._resync(sub)  # too far behind, or events after its cursor were pruned
            return
        for event in events:
            if event["id"] in withheld:
                sub.last = event["id"]  # passed over, not sent: the cursor still moves on
                continue
            # A catch-up is a burst of at most TIDINGS_CATCHUP_LIMIT events, already bounded: a
            # client reading it is not judged slow by it (the next live event is judged).
            await self._deliver(sub, event, judge=False)

    async def _deliver(self, sub: Subscription, event: dict[str, Any], judge: bool = True) -> None:
        sub.last = event["id"]
        # Many local subscribers get the same event: encode its frame once per stream name.
        frames = event.setdefault("frames", {})
        frame = frames.get(sub.name)
        if frame is None:
            frame = frames[sub.name] = json.dumps(
                {
                    "type": event["type"],
                    "stream": sub.name,
                    "cursor": str(event["id"]),
                    "data": event["data"],
                },
                separators=(",", ":"),
            )
        if self.send_prepared is None or not self.send_prepared(self._prepared(event, sub, frame)):
            await self.send(text_data=frame)
        if not judge:
            return
        if self.buffered is not None and self._is_too_slow(self.buffered()):
            await self._drop_slow_client()

    @staticmethod
    def _prepared(event: dict[str, Any], sub: Subscription, frame: str) -> Any:
        """The event's frame for `sub`'s stream, framed once for every local socket (daphne:
        realtime/backpressure.py)."""
        prepared = event.setdefault("prepared", {})
        message = prepared.get(sub.name)
        if message is None:
            message = prepared[sub.name] = prepare(frame)
        return message

    def _is_too_slow(self, held: int) -> bool:
        """Under daphne `send` never waits (the transport buffers without limit), so the queue
        never fills for a client that stopped reading: what the server holds for it is read after
        each frame (realtime/backpressure.py). Over TIDINGS_WS_SEND_BUFFER_BYTES for longer than
        SLOW_GRACE_SECONDS, or over SLOW_HARD_FACTOR times it, the client is dropped."""
        limit = settings.TIDINGS_WS_SEND_BUFFER_BYTES
        if held <= limit:
            self.over_limit_since = None
            return False
        now = time.monotonic()
        if self.over_limit_since is None:
            self.over_limit_since = now
        return held > SLOW_HARD_FACTOR * limit or now - self.over_limit_since > SLOW_GRACE_SECONDS

    async def _refresh_sources(self, sub: Subscription) -> bool:
        """Read the subscription's sources again; True when some were added."""
        if sub.kind.static_sources and sub.sources:
            return False
        sources, skips = await db(_sources_and_skips)(sub.kind, self.scope["user"], sub.arg)
        return self._use_sources(sub, sources, skips)

    def _use_sources(
        self, sub: Subscription, sources: frozenset[str], skips: frozenset[str]
    ) -> bool:
        """Listen to `sources` (and no longer to what `sub` read before); True when some were
        added."""
        sub.skips = skips
        assert self.hub is not None  # noqa: S101 - set in connect() before any message is read
        for source in sub.sources - sources:
            if not any(source in s.sources for s in self.subscriptions.values() if s is not sub):
                self.hub.ignore(source, self)
        added = sources - sub.sources
        for source in added:
            self.hub.listen(source, self)
        sub.sources = sources
        return bool(added)

    async def _still_allowed(self, sub: Subscription) -> bool:
        now = time.monotonic()
        if now - sub.checked_at < ACCESS_RECHECK_SECONDS:
            return True
        sub.checked_at = now
        if not await db(connection_is_valid)(self.scope):
            self._forget_all()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return False
        user = self.scope["user"]
        if not await db(sub.kind.can_see)(user, sub.arg):
            self._forget(sub.name)
            await self.send_error("not_found", "No such stream.", stream=sub.name)
            return False
        if await self._refresh_sources(sub):
            await self._catch_up(sub)  # a newly followed account: its events since the cursor
        return self.subscriptions.get(sub.name) is sub

    async def _resync(self, sub: Subscription) -> None:
        self._forget(sub.name)
        await self.send_json({"type": "resync", "stream": sub.name})

    def _forget_all(self) -> None:
        """End every subscription and leave the hub's index: a socket closed for losing its
        session must not stay there (its queue would fill with events nobody reads)."""
        for name in list(self.subscriptions):
            self._forget(name)

    def _forget(self, name: str) -> None:
        sub = self.subscriptions.pop(name, None)
        if sub is not None:
            self._unlisten(sub)
            if sub.has_presence:
                asyncio.get_running_loop().create_task(self._depart(name))

    def _unlisten(self, sub: Subscription) -> None:
        if self.hub is None:
            return
        for source in sub.sources:
            if not any(source in s.sources for s in self.subscriptions.values() if s is not sub):
                self.hub.ignore(source, self)

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, separators=(",", ":")))

    async def send_error(self, code: str, detail: str, stream: object = None) -> None:
        frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
        if isinstance(stream, str) and len(stream) <= 64:
            frame["stream"] = stream
        await self.send_json(frame)
