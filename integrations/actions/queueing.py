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

A web process does not even ask Redis once per accept: `request_drain_soon` gathers the accepts
of `TIDINGS_INBOUND_DRAIN_GATHER_SECONDS` and makes one `request_drain` after the last of them
committed (`DrainGatherer`), which keeps the argument above: that check runs after every commit
it stands for.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
import time
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


class DrainGatherer:
    """One `request_drain` for the accepts of a short window, from a thread of its own.

    Measured on the inbound benchmark, the flag's round trip to Redis (redis-py packing the
    command, the socket write and read, parsing the answer) was ~10 % of the web process's CPU
    per accepted post. `request` (after an accept's commit) only sets an event; the thread wakes,
    waits `gather` seconds for the accepts that follow, *then* clears the event and makes one
    `request_drain`. An accept that finds the event set committed before that clear, so the
    check made after it sees its row (the debounce's argument, module docstring); one that comes
    after the clear sets the event again and gets the next check. A drain is asked for at most
    `gather` seconds later than before; a check still gathering when the process exits is made
    at exit (a process killed meanwhile leaves its last messages to the sweeper, as a kill
    between commit and `request_drain` always did).
    """

    def __init__(self, gather: float) -> None:
        self.gather = gather
        self._wanted = threading.Event()
        self._lock = threading.Lock()
        self._started_in: int | None = None  # the pid whose thread runs (a fork has none)
        self.checks = 0  # `request_drain` calls made, and an event set after each: for tests
        self.checked = threading.Event()

    def request(self) -> None:
        if self._started_in != os.getpid():
            self._start()
        if not self._wanted.is_set():
            self._wanted.set()

    def flush(self) -> None:
        """The check now, if one is gathering (at exit; tests)."""
        with self._lock:
            if not self._wanted.is_set():
                return
            self._wanted.clear()
            self._check()

    def _start(self) -> None:
        with self._lock:
            if self._started_in == os.getpid():
                return
            self._started_in = os.getpid()
            self._wanted.clear()
            threading.Thread(target=self._run, name="inbound-drain-gatherer", daemon=True).start()
            atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            # Not a synchronisation (the event above is): the window whose accepts share a check.
            time.sleep(self.gather)
            with self._lock:
                if not self._wanted.is_set():
                    continue  # flushed meanwhile
                self._wanted.clear()  # before the check: later accepts ask again
                self._check()

    def _check(self) -> None:
        request_drain()
        self.checks += 1
        self.checked.set()


_gatherer: DrainGatherer | None = None


def request_drain_soon() -> None:
    """`request_drain` for an accept (call after commit): gathered with the accepts of the next
    `TIDINGS_INBOUND_DRAIN_GATHER_SECONDS` into one (`DrainGatherer`); at 0, at once."""
    global _gatherer
    gather = settings.TIDINGS_INBOUND_DRAIN_GATHER_SECONDS
    if gather <= 0:
        request_drain()
        return
    if _gatherer is None or _gatherer.gather != gather:
        with _client_lock:
            if _gatherer is None or _gatherer.gather != gather:
                _gatherer = DrainGatherer(gather)
    _gatherer.request()
