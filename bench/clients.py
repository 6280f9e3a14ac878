"""The client side: WebSocket followers, an asyncio HTTP poster, and the measured phases.

Everything runs on one asyncio loop in the benchmark process, so post and delivery times come
from one clock (`time.perf_counter`). A follower's reader stamps each frame the moment `recv()`
hands it over and keeps it raw; frames are decoded only after the phase, so decoding never delays
the stamping of another follower's frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.servers import BenchError

OPEN_TIMEOUT = 60.0
CONNECT_CONCURRENCY = 50
DELIVERY_TIMEOUT = 15.0
RETRIES = 3
# Only these frames count towards "every follower has the post" (the analysis looks at all frames).
POST_FRAME = b'"activity.created"'


# --- HTTP ---------------------------------------------------------------------------------------


class Http:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams (JSON in, JSON out)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        payload = b"" if body is None else json.dumps(body).encode()
        head = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Accept: application/json",
            f"Content-Length: {len(payload)}",
        ]
        if body is not None:
            head.append("Content-Type: application/json")
        if token is not None:
            head.append(f"Authorization: Token {token}")
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            self.writer.write(raw)
            status_line = await self.reader.readline()
            if status_line:
                break
            # The server closed an idle keep-alive connection before reading: nothing was done.
            await self.close()
            if attempt == 2:
                raise BenchError(f"{method} {path}: connection closed without an answer")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            data = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            data = b"".join(parts)
        else:
            data = await self.reader.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            await self.close()
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, data.decode(errors="replace")


# --- followers ------------------------------------------------------------------------------------


class Counter:
    """Frames received by all followers; wakes the poster when a target is reached."""

    def __init__(self) -> None:
        self.count = 0
        self.target: int | None = None
        self.event = asyncio.Event()

    def hit(self) -> None:
        self.count += 1
        if self.target is not None and self.count >= self.target:
            self.event.set()

    def expect(self, target: int) -> None:
        self.target = target
        self.event.clear()
        if self.count >= target:
            self.event.set()

    def reset(self) -> None:
        self.count = 0
        self.target = None
        self.event.clear()


class Follower:
    def __init__(self, ws: ClientConnection, counter: Counter) -> None:
        self.ws = ws
        self.counter = counter
        self.frames: list[tuple[float, bytes]] = []
        self.closed: str | None = None
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        recv = self.ws.recv
        clock = time.perf_counter
        hit = self.counter.hit
        try:
            while True:
                raw = await recv(decode=False)
                self.frames.append((clock(), raw))
                if POST_FRAME in raw[:64]:
                    hit()
        except ConnectionClosed as closed:
            self.closed = str(closed.rcvd.code if closed.rcvd else None)

    async def close(self) -> None:
        try:
            await self.ws.close()
        finally:
            self.task.cancel()


async def open_follower(url: str, stream: str, counter: Counter) -> Follower:
    ws = await connect(
        url,
        open_timeout=OPEN_TIMEOUT,
        ping_interval=None,  # the server pings; answering is enough
        close_timeout=5,
        max_size=1 << 20,
        max_queue=None,
        proxy=None,
    )
    try:
        await ws.send(json.dumps({"op": "subscribe", "stream": stream, "since": None}))
        first = json.loads(await asyncio.wait_for(ws.recv(), OPEN_TIMEOUT))
        if first.get("type") != "subscribed":
            raise BenchError(f"subscribe to {stream} answered {first!r}")
    except BaseException:
        await ws.close()
        raise
    return Follower(ws, counter)


def ws_url(base: str, ticket: str | None) -> str:
    return base if ticket is None else f"{base}?{urlencode({'ticket': ticket})}"


async def open_followers(
    base_url: str,
    stream: str,
    counter: Counter,
    count: int,
    *,
    tickets: Sequence[str | None] | None = None,
    ticket_source: Any = None,
    concurrency: int = CONNECT_CONCURRENCY,
) -> list[Follower]:
    """Open `count` followers, at most `concurrency` handshakes at a time, in index order.

    `tickets`: one pre-issued ticket per follower (or None: no authentication);
    `ticket_source(i)`: a coroutine that fetches follower i's ticket over HTTP first.
    """
    followers: list[Follower | None] = [None] * count
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            index = next_index
            next_index += 1
            if ticket_source is not None:
                ticket = await ticket_source(index)
            else:
                ticket = tickets[index] if tickets is not None else None
            followers[index] = await open_follower(ws_url(base_url, ticket), stream, counter)

    workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, count))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await close_followers([f for f in followers if f is not None])
        raise
    return [f for f in followers if f is not None]


async def close_followers(followers: Sequence[Follower]) -> None:
    await asyncio.gather(*(f.close() for f in followers), return_exceptions=True)


# --- posting and analysis -------------------------------------------------------------------------


@dataclass
class Poster:
    http: Http
    path: str
    token: str | None
    serial: int = 0
    errors: int = 0  # answers other than 201 (each retried)
    error_sample: str = ""

    async def post(self) -> tuple[float, float, int]:
        """(send time, answer time, activity id) of one new post; a failed POST is retried."""
        for _attempt in range(RETRIES + 1):
            self.serial += 1
            body = {"body": f"bench post {self.serial}"}
            sent = time.perf_counter()
            status, answer = await self.http.request("POST", self.path, body, token=self.token)
            answered = time.perf_counter()
            if status == 201 and isinstance(answer, dict) and "id" in answer:
                return sent, answered, int(answer["id"])
            self.errors += 1
            self.error_sample = self.error_sample or f"{status}: {str(answer)[:200]}"
            await asyncio.sleep(0.2)
        raise BenchError(f"POST {self.path} failed {RETRIES + 1} times: {self.error_sample}")


@dataclass
class Phase:
    """What one measured phase saw; times in seconds (perf_counter)."""

    name: str
    followers: int
    planned: int
    sent: dict[int, float] = field(default_factory=dict)
    http: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    last: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)  # per post: to the first follower it reached
    missing: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    stalls: int = 0
    http_errors: int = 0
    truncated: bool = False
    first_sent: float = 0.0
    last_received: float = 0.0
    wall: float = 0.0
    # Per post: (sent, seconds after the phase's first post; HTTP answer time; followers reached;
    # first, median and last delivery latency). The first follower's delay is the path before
    # the fan-out; last minus first is the fan-out through server and client.
    series: list[tuple[float, float, int, float, float, float]] = field(default_factory=list)

    @property
    def deliveries(self) -> int:
        return len(self.latencies)

    @property
    def expected(self) -> int:
        return len(self.sent) * self.followers

    @property
    def rate(self) -> float:
        span = self.last_received - self.first_sent
        return self.deliveries / span if span > 0 else 0.0


@dataclass
class Group:
    """Followers connected together; their frames are kept until `finish` analyses them.

    Counting is cumulative over the group's phases: a phase that waits for "every follower has
    every post so far" also waits for what an earlier phase left in flight.
    """

    followers: list[Follower]
    counter: Counter
    phases: list[Phase] = field(default_factory=list)
    expected: int = 0
    deficit: int = 0  # frames given up on after a timeout (late or lost; `finish` tells)
    unexpected: int = 0
    unexpected_sample: str = ""
    closed: int = 0
    drained: float = 0.0

    def __post_init__(self) -> None:
        # The client's own collector pauses would read as delivery latency; `finish` collects.
        gc.collect()
        gc.disable()

    @property
    def size(self) -> int:
        return len(self.followers)

    async def wait(self, timeout: float) -> bool:
        self.counter.expect(self.expected - self.deficit)
        try:
            await asyncio.wait_for(self.counter.event.wait(), timeout)
        except TimeoutError:
            self.deficit = self.expected - self.counter.count
            return False
        return True


async def sequential(
    group: Group,
    name: str,
    poster: Poster,
    posts: int,
    gap: float,
    budget: float,
    idle_before: float = 0.0,
) -> Phase:
    """One post at a time: (stay idle `idle_before`,) post, wait until every follower has it,
    pause `gap`, next.

    Stops early (after at least one post) once `budget` seconds have passed.
    """
    phase = Phase(name, group.size, posts)
    group.phases.append(phase)
    errors = poster.errors
    started = time.perf_counter()
    for index in range(posts):
        if index and time.perf_counter() - started > budget:
            phase.truncated = True
            break
        if idle_before:
            await asyncio.sleep(idle_before)
        sent, answered, activity = await poster.post()
        phase.sent[activity] = sent
        phase.http.append(answered - sent)
        group.expected += group.size
        if not await group.wait(DELIVERY_TIMEOUT):
            phase.stalls += 1
        await asyncio.sleep(gap)
    phase.wall = time.perf_counter() - started
    phase.http_errors = poster.errors - errors
    return phase


async def burst(group: Group, name: str, poster: Poster, posts: int, wait: float) -> Phase:
    """`posts` posts back to back (each as soon as the previous one's HTTP answer is in), then
    wait up to `wait` seconds for them all to be delivered."""
    phase = Phase(name, group.size, posts)
    group.phases.append(phase)
    errors = poster.errors
    started = time.perf_counter()
    for _ in range(posts):
        sent, answered, activity = await poster.post()
        phase.sent[activity] = sent
        phase.http.append(answered - sent)
    group.expected += posts * group.size
    if not await group.wait(wait):
        phase.stalls += 1
    phase.wall = time.perf_counter() - started
    phase.http_errors = poster.errors - errors
    return phase


async def finish(group: Group, drain: float) -> None:
    """Wait up to `drain` seconds for anything still in flight, close, and analyse every phase.

    What has not arrived by then is counted as undelivered: lost, or later than `drain`.
    """
    group.deficit = 0
    started = time.perf_counter()
    await group.wait(drain)
    group.drained = time.perf_counter() - started
    await asyncio.sleep(0.2)  # a late duplicate would land here
    await close_followers(group.followers)
    _analyse(group)
    gc.enable()
    gc.collect()


def _analyse(group: Group) -> None:
    owner: dict[int, Phase] = {}
    for phase in group.phases:
        owner.update(dict.fromkeys(phase.sent, phase))
        phase.first_sent = min(phase.sent.values(), default=0.0)
    last: dict[int, float] = dict.fromkeys(owner, 0.0)
    reached: dict[int, int] = dict.fromkeys(owner, 0)
    per_post: dict[int, list[float]] = {activity: [] for activity in owner}
    for follower in group.followers:
        if follower.closed is not None and follower.closed != "1000":
            group.closed += 1
        seen: set[int] = set()
        previous = 0
        for stamp, raw in follower.frames:
            try:
                message = json.loads(raw)
                activity = (
                    int(message["data"]["id"]) if message["type"] == "activity.created" else 0
                )
            except (ValueError, KeyError, TypeError):
                activity = 0
            phase = owner.get(activity)
            if phase is None:
                group.unexpected += 1
                group.unexpected_sample = group.unexpected_sample or str(raw)[:200]
                continue
            if activity in seen:
                phase.duplicates += 1
                continue
            seen.add(activity)
            if activity < previous:
                phase.out_of_order += 1
            previous = activity
            delay = stamp - phase.sent[activity]
            phase.latencies.append(delay)
            per_post[activity].append(delay)
            reached[activity] += 1
            last[activity] = max(last[activity], delay)
            phase.last_received = max(phase.last_received, stamp)
        for activity, phase in owner.items():
            if activity not in seen:
                phase.missing += 1
    # Latency to the last follower is only defined for posts that reached every follower.
    for phase in group.phases:
        phase.last = [last[a] for a in phase.sent if reached[a] == group.size]
        phase.first = [min(per_post[a]) for a in phase.sent if per_post[a]]
        for (activity, sent), http in zip(phase.sent.items(), phase.http, strict=True):
            delays = sorted(per_post[activity])
            median = delays[len(delays) // 2] if delays else math.nan
            first, longest = (delays[0], delays[-1]) if delays else (math.nan, math.nan)
            phase.series.append(
                (sent - phase.first_sent, http, len(delays), first, median, longest)
            )
