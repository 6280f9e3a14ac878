"""Request threads are reused, one request at a time each (config/asgi.py `RequestThreads`)."""

from __future__ import annotations

import asyncio
import threading

from config.asgi import RequestThreads


def _thread_of(executor: object) -> int:
    return executor.submit(threading.get_ident).result(timeout=5)  # type: ignore[attr-defined]


async def test_a_request_thread_is_used_again_by_the_next_request() -> None:
    threads = RequestThreads()
    first = threads.take()
    ident = _thread_of(first)
    await threads.give_back(first)
    second = threads.take()
    assert second is first and _thread_of(second) == ident
    await threads.give_back(second)


async def test_a_thread_still_busy_with_its_request_is_not_given_to_another() -> None:
    """A view can outlive its request (the client went away and Django cancelled the task):
    its thread is kept out until the view ends."""
    threads = RequestThreads()
    busy = threads.take()
    release = threading.Event()
    running = busy.submit(release.wait, 5)
    kept = threads.give_back(busy)
    other = threads.take()
    assert other is not busy
    assert not kept.done()
    release.set()
    await asyncio.wrap_future(running)
    await kept
    assert threads.take() is busy
    for executor in (busy, other):
        executor.shutdown(wait=True)


async def test_threads_beyond_the_idle_limit_end() -> None:
    threads = RequestThreads(idle_limit=1)
    one, two = threads.take(), threads.take()
    _thread_of(two)
    await threads.give_back(one)
    await threads.give_back(two)
    assert threads.idle == [one]
    assert two._shutdown  # type: ignore[attr-defined]
    one.shutdown(wait=True)
