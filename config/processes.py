"""The processes that make up a Tidings deployment, in one place.

`make run` starts web, worker and beat together (scripts/run.py), `make web|inbound|worker|beat`
one each (`python -m config.processes web`), and docker-compose.yml runs each as a service;
tests/config/test_compose.py checks that they all agree with this list.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# WebSocket limits enforced by daphne itself, before the application sees a byte: an oversized
# frame or message closes the connection without buffering it (daphne >= 4.2.2); a peer that
# stops answering keepalive pings is dropped.
WEBSOCKET_LIMITS = [
    "--websocket-max-message-size",
    "65536",
    "--websocket-max-frame-size",
    "65536",
    "--ping-interval",
    "20",
    "--ping-timeout",
    "30",
]


def web(host: str, port: int) -> list[str]:
    return ["daphne", "-b", host, "-p", str(port), *WEBSOCKET_LIMITS, "config.asgi:application"]


def inbound(host: str, port: int) -> list[str]:
    """The inbound email tier: the same application on uvicorn (httptools, uvloop), HTTP only.

    The balancer sends `/integrations/email/inbound/` here and everything else, WebSockets
    first, to `web` (daphne keeps the sockets: its per-socket memory is what the real-time bar
    was measured on). Measured on the inbound benchmark's 2,000 posts with no worker running
    (docs/benchmarks-inbound.md): daphne spent 2.06-2.27 ms of CPU per accepted post, most of it
    in Twisted's HTTP parsing and response writing; uvicorn with httptools' C parser and uvloop
    1.37-1.59 ms for the same answers from the same code.
    """
    return [
        "uvicorn",
        "config.asgi:application",
        "--host",
        host,
        "--port",
        str(port),
        "--http",
        "httptools",
        "--loop",
        "uvloop",
        # No WebSockets on this tier (they go to daphne), and Django's handler does not speak
        # the lifespan protocol.
        "--ws",
        "none",
        "--lifespan",
        "off",
        # The balancer logs every request, and every accepted message is a row with its time:
        # uvicorn's access line (formatted through `logging`) was 8 % of this tier's CPU per
        # post in a profile (~0.1 ms). Errors are still logged.
        "--no-access-log",
    ]


WORKER = ["celery", "-A", "config", "worker", "--loglevel", "INFO"]
BEAT = ["celery", "-A", "config", "beat", "--loglevel", "INFO"]


def command(name: str) -> list[str]:
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8000"))
    if name == "web":
        return web(host, port)
    if name == "inbound":
        return inbound(host, port)
    return {"worker": WORKER, "beat": BEAT}[name]


if __name__ == "__main__":
    argv = command(sys.argv[1])
    local = Path(sys.executable).parent / argv[0]
    os.execv(local if local.exists() else argv[0], argv)  # noqa: S606 - fixed argument lists
