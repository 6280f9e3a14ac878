"""The `/ws/` consumer: authenticate, authorise each subscription, catch up, forward.

Protocol (docs/realtime.md, DESIGN.md section 4): the client sends `subscribe`, `unsubscribe` and
`ping` operations; the server answers `subscribed`, events, `resync`, `error` and `pong`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from realtime import channel, outbox, streams

MAX_FRAME_CHARS = 4096
MAX_SUBSCRIPTIONS = 100
# Visibility is re-checked at delivery; a verdict is trusted for this long at most, which bounds
# how long a user who lost access can still receive events.
ACCESS_RECHECK_SECONDS = 2.0
# Per-connection rate limit: a token bucket of client messages.
RATE_PER_SECOND = 20.0
RATE_BURST = 40.0


def parse_cursor(raw: object) -> int | None:
    """None for "from now on", else the cursor as a number; ValueError for anything else."""
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < 10**18:
        return raw
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 18:
        return int(raw)
    raise ValueError(f"not a cursor: {raw!r}")


@dataclass
class Subscription:
    stream: str
    kind: streams.StreamKind
    arg: int | None
    last: int
    checked_at: float


class StreamConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.subscriptions: dict[str, Subscription] = {}
        self.tokens = RATE_BURST
        self.tokens_at = time.monotonic()
        reject = self.scope.get("realtime_reject")
        await self.accept()
        if reject:
            # Accepted only so that the client can read the close code; nothing is read or sent.
            await self.close(code=reject)

    async def disconnect(self, code: int) -> None:
        for stream in list(getattr(self, "subscriptions", {})):
            await channel.leave(stream, self.channel_name)
        self.subscriptions = {}

    # --- client -> server -------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.scope.get("realtime_reject"):
            return
        if not self._take_token():
            await self.send_error("rate_limited", "Too many messages; slow down.")
            return
        if text_data is None:
            await self.send_error("bad_request", "Send JSON objects in text frames.")
            return
        if len(text_data) > MAX_FRAME_CHARS:
            await self.send_error(
                "bad_request", f"Messages are limited to {MAX_FRAME_CHARS} characters."
            )
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self.send_error("bad_request", "Messages must be JSON objects.")
            return
        if not isinstance(content, dict):
            await self.send_error("bad_request", "Messages must be JSON objects.")
            return
        op = content.get("op")
        if op == "subscribe":
            await self.op_subscribe(content)
        elif op == "unsubscribe":
            await self.op_unsubscribe(content)
        elif op == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.send_error(
                "bad_request", 'Unknown "op"; use subscribe, unsubscribe or ping.'
            )

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
        if not await database_sync_to_async(kind.can_see)(self.scope["user"], arg):
            await self.send_error("not_found", "No such stream.", stream=name)
            return
        await self._forget(name)
        # Join before reading the head: an event committed in between is then both in the
        # catch-up and in the live queue, and the cursor drops the second copy.
        await channel.join(name, self.channel_name)
        sub = Subscription(name, kind, arg, last=0, checked_at=time.monotonic())
        self.subscriptions[name] = sub
        if since is None:
            sub.last = await database_sync_to_async(outbox.stream_head)(name)
            await self.send_json({"type": "subscribed", "stream": name, "cursor": str(sub.last)})
            return
        if since > await database_sync_to_async(outbox.newest_event_id)():
            await self._resync(sub)  # a cursor this server never handed out
            return
        sub.last = since
        await self.send_json({"type": "subscribed", "stream": name, "cursor": str(since)})
        await self._catch_up(sub)

    async def op_unsubscribe(self, content: dict[str, Any]) -> None:
        name = content.get("stream")
        if not isinstance(name, str) or name not in self.subscriptions:
            await self.send_error("not_found", "Not subscribed to that stream.", stream=name)
            return
        await self._forget(name)
        await self.send_json({"type": "unsubscribed", "stream": name})

    # --- channel layer -> client --------------------------------------------------------------

    async def stream_event(self, message: dict[str, Any]) -> None:
        event = message["event"]
        sub = self.subscriptions.get(event["stream"])
        if sub is None or event["id"] <= sub.last:
            return  # not subscribed (any more), or already delivered by catch-up
        if not await self._still_visible(sub):
            return
        prev = event.get("prev")
        if prev is not None and prev > sub.last:
            # A live message before this one never arrived; the database has it.
            await self._catch_up(sub)
            return
        await self._deliver(sub, event)

    # --- internals ----------------------------------------------------------------------------

    async def _catch_up(self, sub: Subscription) -> None:
        limit = settings.TIDINGS_CATCHUP_LIMIT
        events = await database_sync_to_async(outbox.events_after)(sub.stream, sub.last, limit + 1)
        if len(events) > limit:
            await self._resync(sub)
            return
        for event in events:
            await self._deliver(sub, event.as_message())

    async def _deliver(self, sub: Subscription, event: dict[str, Any]) -> None:
        sub.last = event["id"]
        await self.send_json(
            {
                "type": event["type"],
                "stream": sub.stream,
                "cursor": str(event["id"]),
                "data": event["data"],
            }
        )

    async def _still_visible(self, sub: Subscription) -> bool:
        now = time.monotonic()
        if now - sub.checked_at < ACCESS_RECHECK_SECONDS:
            return True
        visible = await database_sync_to_async(sub.kind.can_see)(self.scope["user"], sub.arg)
        sub.checked_at = now
        if not visible:
            await self._forget(sub.stream)
            await self.send_error("not_found", "No such stream.", stream=sub.stream)
        return visible

    async def _resync(self, sub: Subscription) -> None:
        await self._forget(sub.stream)
        await self.send_json({"type": "resync", "stream": sub.stream})

    async def _forget(self, stream: str) -> None:
        if self.subscriptions.pop(stream, None) is not None:
            await channel.leave(stream, self.channel_name)

    def _take_token(self) -> bool:
        now = time.monotonic()
        self.tokens = min(RATE_BURST, self.tokens + (now - self.tokens_at) * RATE_PER_SECOND)
        self.tokens_at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, separators=(",", ":")))

    async def send_error(self, code: str, detail: str, stream: object = None) -> None:
        frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
        if isinstance(stream, str) and len(stream) <= 64:
            frame["stream"] = stream
        await self.send_json(frame)
