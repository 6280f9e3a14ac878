"""Asking the worker to drain the queue of inbound email, without one Celery message per message.

Accepting a message commits its row as `queued`; the worker finds queued rows by itself (a drain
claims them in batches, `integrations.actions.processing`). What a web process must still do is
make sure some drain runs after its commit. With Redis, a flag debounces that: the first accept
sets it and sends one drain task; accepts that find it set send nothing, because the drain they
would send has not started yet. A drain deletes the flag *before* its first claim, so:

- an accept that committed before the delete is seen by that drain's claims, and
- an accept that committed after it finds the flag gone and sends the next drain.

Either way nothing queued waits for the sweeper, which remains the net for a lost task (broker
down at accept, a worker killed): the flag expires on its own after `FLAG_SECONDS`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)
# Long enough to debounce a burst, short enough that a lost drain task is replaced quickly by the
# next accept (the sweeper is the net for the rest).
FLAG_SECONDS = 10
_client: tuple[str, Any] | None = None
_client_lock = threading.Lock()


def _redis() -> Any | None:
    """This process's Redis client (a thread-safe pool), or None without Redis."""
    global _client
    url = settings.REDIS_URL
    if not url:
        return None
    with _client_lock:
        if _client is None or _client[0] != url:
            import redis

            _client = (url, redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2))
        return _client[1]


def drain_flag() -> str:
    """One flag per database, so two deployments sharing a Redis never silence each other."""
    db = connection.settings_dict
    where = f"{db.get('HOST') or ''}:{db.get('PORT') or ''}/{db['NAME']}"
    digest = hashlib.sha1(where.encode(), usedforsecurity=False).hexdigest()[:16]
    return f"tidings.inbound.drain.{digest}"


def request_drain() -> None:
    """Make sure a drain runs after this point (call after commit). Never raises: a message
    that stays queued is found by the next drain or by the sweeper."""
    try:
        client = _redis()
        if client is not None and not client.set(drain_flag(), 1, nx=True, ex=FLAG_SECONDS):
            return  # a drain is queued and has not started: it will see this commit
        send_drain()
    except Exception:
        log.warning("could not queue an inbound drain; the sweeper will run one")


def send_drain() -> None:
    from integrations import tasks

    tasks.drain_inbound_emails.delay()


def drain_started() -> None:
    """Called by a drain before its first claim (see the module's docstring)."""
    try:
        client = _redis()
        if client is not None:
            client.delete(drain_flag())
    except Exception:
        # The flag then expires by itself; until then accepts rely on the running drains.
        log.warning("could not clear the inbound drain flag")
