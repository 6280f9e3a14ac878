"""The floor: a bare ASGI app that broadcasts in-process, served by the same server as Tidings.

- `/ws/`: accepts, answers `{"op": "subscribe", "stream": "account:<id>"}` with `subscribed` and
  remembers the connection's `send` under that stream.
- `POST /post/<id>/` with `{"body": ...}`: encodes one `activity.created` frame (same shape as
  Tidings's) and awaits `send` for every subscriber of `account:<id>`, then answers 201 with the id.
- `GET /healthz/`: 200.

No database, no channel layer, no authentication: only the server and the sockets.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

SUBSCRIBERS: dict[str, set[Send]] = defaultdict(set)
IDS = itertools.count(1)


async def application(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await _http(scope, receive, send)
    elif scope["type"] == "websocket":
        await _websocket(receive, send)
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _respond(send: Send, status: int, content: dict[str, Any]) -> None:
    body = json.dumps(content).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _http(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    path = scope["path"]
    if path == "/healthz/":
        await _respond(send, 200, {"status": "ok"})
        return
    parts = path.strip("/").split("/")
    if scope["method"] != "POST" or len(parts) != 2 or parts[0] != "post" or not parts[1].isdigit():
        await _respond(send, 404, {"detail": "Not found."})
        return
    account = int(parts[1])
    body = json.loads(b"".join(chunks) or b"{}").get("body", "")
    pk = next(IDS)
    stream = f"account:{account}"
    data = {"id": pk, "account": account, "body": body}
    frame = json.dumps(
        {"type": "activity.created", "stream": stream, "cursor": str(pk), "data": data},
        separators=(",", ":"),
    )
    message = {"type": "websocket.send", "text": frame}
    for subscriber in tuple(SUBSCRIBERS.get(stream, ())):
        await subscriber(message)
    await _respond(send, 201, data)


async def _websocket(receive: Receive, send: Send) -> None:
    streams: set[str] = set()
    try:
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.connect":
                await send({"type": "websocket.accept"})
            elif kind == "websocket.disconnect":
                return
            elif kind == "websocket.receive":
                content = json.loads(message.get("text") or "null")
                stream = content.get("stream") if isinstance(content, dict) else None
                if content.get("op") == "subscribe" and isinstance(stream, str):
                    SUBSCRIBERS[stream].add(send)
                    streams.add(stream)
                    reply = {"type": "subscribed", "stream": stream, "cursor": "0"}
                    await send({"type": "websocket.send", "text": json.dumps(reply)})
    finally:
        for stream in streams:
            SUBSCRIBERS[stream].discard(send)
