"""The processes that make up a Tidings deployment, in one place.

`make run` starts them together (scripts/run.py), `make web|worker|beat` one each
(`python -m config.processes web`), and docker-compose.yml runs each as a service;
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


WORKER = ["celery", "-A", "config", "worker", "--loglevel", "INFO"]
BEAT = ["celery", "-A", "config", "beat", "--loglevel", "INFO"]


def command(name: str) -> list[str]:
    if name == "web":
        return web(os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8000")))
    return {"worker": WORKER, "beat": BEAT}[name]


if __name__ == "__main__":
    argv = command(sys.argv[1])
    local = Path(sys.executable).parent / argv[0]
    os.execv(local if local.exists() else argv[0], argv)  # noqa: S606 - fixed argument lists
