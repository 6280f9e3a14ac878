"""A client that stops reading, against daphne as deployed (RELIABILITY.md, "WebSocket").

Under daphne `send` never waits: Twisted buffers whatever it is given, so a client that subscribes
and then never reads would grow the server's memory for as long as posts flow. The consumer reads
the transport's buffer after each frame (realtime/backpressure.py) and drops the client past
`TIDINGS_WS_SEND_BUFFER_BYTES` with close 4008. This test holds a raw TCP socket that subscribes
and then reads nothing (its receive buffer kept small, as a stalled phone's would fill), while a
normal client on the same stream keeps receiving every post before the next one is made.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from rest_framework.authtoken.models import Token

from tests import services
from tests.conftest import Cast
from tests.servers import WebServer
from tests.service.conftest import Api, Sockets, StartServer, in_db_thread

pytestmark = [pytest.mark.service, pytest.mark.django_db(transaction=True)]

# Posts of 8,000 characters: a frame of about 8.5 KB each, so the server's buffer for the slow
# client passes its limit (set low below, so the test runs in seconds) after a few dozen posts.
BODY = "slow " * 1600
BUFFER_LIMIT = 128 * 1024
POSTS = 240
# The slow client is dropped once the server (its own buffer and the kernel's send queue) holds
# four times BUFFER_LIMIT for it, or BUFFER_LIMIT for 5 s. Dropping it is a close frame that it will
# never read, so daphne aborts the connection when the close handshake is not answered: after
# autobahn's one-second timeout, on a timer of 0.2 s buckets. The bound is in time from the post
# that took it past four times the limit, not in posts: how many posts fit in that second depends
# on how loaded the machine is (the readers were gone by post 102 and 116 on CI, by 66-80 idle).
HARD_LIMIT = 4 * BUFFER_LIMIT
DROPPED_WITHIN_SECONDS = 3.0
# Memory the server may grow by while the slow clients stall: without the bound each would hold
# every post (POSTS * 8.5 KB, about 2 MB, times SLOW_CLIENTS: 16 MB); with it, each holds at most
# four times BUFFER_LIMIT (4 MB in all, part of it in the kernel's send queue, not in RSS).
# The baseline is taken after WARM_POSTS posts of the same size: without them the server's own
# warm-up (caches, pools, allocator arenas: about 4 MB over its first 500 such posts) fell inside
# the measurement, which read 5.3 MB idle and 9.3 MB on a loaded CI run, over this limit. Warmed,
# it reads 2.8-3.1 MB idle and 2.8-3.3 MB with both cores busy.
SLOW_CLIENTS = 8
WARM_POSTS = 240
RSS_GROWTH_LIMIT_KIB = 9 * 1024
TCP_ESTABLISHED = 1


class RawClient:
    """A WebSocket client on a bare socket, so that not reading really means not reading."""

    def __init__(self, server: WebServer, ticket: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Small, as a stalled mobile client's buffer is full: the server's side must hold the rest.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect((server.host, server.port))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /ws/?{urlencode({'ticket': ticket})} HTTP/1.1\r\n"
            f"Host: {server.host}:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        self.pending = b""
        while b"\r\n\r\n" not in self.pending:
            self.pending += self.sock.recv(4096)
        head, _, self.pending = self.pending.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    def send_json(self, message: dict[str, Any]) -> None:
        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert len(payload) < 126
        self.sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def frames(self) -> list[tuple[int, bytes]]:
        """Every complete frame that can still be read, until the connection ends."""
        found: list[tuple[int, bytes]] = []
        self.sock.settimeout(5)
        while True:
            frame = self._frame()
            if frame is None:
                return found
            found.append(frame)
            if frame[0] == 0x8:  # close
                return found

    def recv_json(self) -> dict[str, Any]:
        frame = self._frame()
        assert frame is not None and frame[0] == 0x1, frame
        return dict(json.loads(frame[1]))

    def _read(self, count: int) -> bytes | None:
        while len(self.pending) < count:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                return None
            if not chunk:
                return None
            self.pending += chunk
        data, self.pending = self.pending[:count], self.pending[count:]
        return data

    def _frame(self) -> tuple[int, bytes] | None:
        head = self._read(2)
        if head is None:
            return None
        opcode, length = head[0] & 0x0F, head[1] & 0x7F
        if length == 126:
            raw = self._read(2)
            length = struct.unpack("!H", raw)[0] if raw else 0
        elif length == 127:
            raw = self._read(8)
            length = struct.unpack("!Q", raw)[0] if raw else 0
        payload = self._read(length)
        return None if payload is None else (opcode, payload)

    def is_open(self) -> bool:
        """The kernel's view of the connection (TCP_INFO), without reading from it."""
        info = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        return info[0] == TCP_ESTABLISHED

    def close(self) -> None:
        self.sock.close()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def waiting_for_drop(past_hard_limit_at: float | None, dropped_at: float | None) -> bool:
    """Posts go on past POSTS (on a fast machine) until the drop is due."""
    if dropped_at is not None or past_hard_limit_at is None:
        return False
    return time.monotonic() - past_hard_limit_at <= DROPPED_WITHIN_SECONDS


def make_tokens(cast: Cast) -> tuple[str, str, str]:
    users = (cast.owner, cast.teammate, cast.support)
    owner, teammate, support = (Token.objects.create(user=u).key for u in users)
    return owner, teammate, support


async def test_a_client_that_stops_reading_is_dropped_and_catches_up(
    cast: Cast, start_server: StartServer
) -> None:
    server = start_server(
        "slow",
        redis_url=services.require_redis(),
        TIDINGS_WS_SEND_BUFFER_BYTES=str(BUFFER_LIMIT),
    )
    api = Api(server)
    sockets = Sockets(server)
    owner, teammate, support = await in_db_thread(make_tokens, cast)
    stream = f"account:{cast.account.pk}"
    try:
        fast = await sockets.open(ticket=await api.ticket(teammate))
        first = await fast.subscribe(stream)
        assert first["type"] == "subscribed", first
        # Posts of the same size first, read by the reading client alone: the server's caches,
        # pools and allocator arenas grow over its first few hundred such posts (about 4 MB by
        # post 500, then flat), and that growth belongs in the baseline, not in the slow clients'.
        for _ in range(WARM_POSTS):
            made = await api.post(owner, cast.account.pk, BODY)
            assert (await fast.recv())["data"]["id"] == made["id"]

        slow = [RawClient(server, await api.ticket(support)) for _ in range(SLOW_CLIENTS)]
        since = ""
        for client in slow:
            client.send_json({"op": "subscribe", "stream": stream, "since": None})
            answer = client.recv_json()
            assert answer["type"] == "subscribed", answer
            since = answer["cursor"]
        # The slow clients' first post, read by all of them, before the baseline.
        warm = await api.post(owner, cast.account.pk, "warm-up")
        assert (await fast.recv())["data"]["id"] == warm["id"]
        before = rss_kib(server.process.pid)

        posted: list[int] = [warm["id"]]
        handed = 0  # bytes of frames the server was given for each slow client
        past_hard_limit_at: float | None = None
        dropped_at: float | None = None
        while len(posted) <= POSTS or waiting_for_drop(past_hard_limit_at, dropped_at):
            made = await api.post(owner, cast.account.pk, BODY)
            posted.append(made["id"])
            # The others keep up: each post reaches the reading client before the next is made.
            event = await fast.recv()
            assert event["data"]["id"] == made["id"], event
            # The slow clients' frames are the reading client's, byte for byte (same stream).
            handed += len(json.dumps(event, separators=(",", ":")).encode())
            now = time.monotonic()
            if past_hard_limit_at is None and handed > HARD_LIMIT:
                past_hard_limit_at = now
            if dropped_at is None and not any(client.is_open() for client in slow):
                dropped_at = now
        grown = rss_kib(server.process.pid) - before

        assert past_hard_limit_at is not None, f"only {handed} bytes were posted"
        assert dropped_at is not None, "the clients that stopped reading were never dropped"
        took = dropped_at - past_hard_limit_at
        assert took <= DROPPED_WITHIN_SECONDS, f"dropped {took:.1f} s after passing the limit"
        assert grown <= RSS_GROWTH_LIMIT_KIB, f"server grew by {grown} KiB"

        # The client returns: it reads what reached it, then resumes from its last cursor.
        client = slow[0]
        seen = [json.loads(payload) for opcode, payload in client.frames() if opcode == 0x1]
        cursor = seen[-1]["cursor"] if seen else since
        back = await sockets.open(ticket=await api.ticket(support))
        resumed = await back.subscribe(stream, since=cursor)
        assert resumed["type"] == "subscribed", resumed
        caught_up = [await back.recv() for _ in range(len(posted) - len(seen))]
        ids = [event["data"]["id"] for event in seen + caught_up]
        assert ids == posted, "every post exactly once, in order, across the drop"
        await back.ping()  # and nothing more came after them
    finally:
        for client in locals().get("slow", []):
            client.close()
        await sockets.close_all()
