"""ASGI entry point: HTTP to Django, `/ws/` to the real-time consumer."""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import asyncio
import concurrent.futures

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler

# Request threads kept for the next request once their request is over (beyond this, they end).
IDLE_REQUEST_THREADS = 32


class RequestThreads:
    """Single-thread executors for requests, reused instead of one new thread per request.

    Django runs each request in a `ThreadSensitiveContext` of its own, which starts a thread
    for the request and joins it when the request ends, both on the event loop: profiled on the
    real-time benchmark (busy machine), `Thread.start` and the join took about 1 ms of the loop
    per post, the start ahead of the view (docs/benchmarks.md). A request still gets a thread to
    itself for all its thread-sensitive calls, as under a WSGI server's thread pool; an executor
    is taken back only once everything submitted to it has run (a view still running after its
    client went away keeps its thread until it ends), so no two requests ever share one at the
    same time.
    """

    def __init__(self, idle_limit: int = IDLE_REQUEST_THREADS) -> None:
        self.idle: list[concurrent.futures.ThreadPoolExecutor] = []
        self.idle_limit = idle_limit

    def take(self) -> concurrent.futures.ThreadPoolExecutor:
        if self.idle:
            return self.idle.pop()
        return concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def give_back(self, executor: concurrent.futures.ThreadPoolExecutor) -> asyncio.Future[None]:
        """Keep `executor` for another request once its queue has drained; the future is done
        when it is kept (or ended)."""
        loop = asyncio.get_running_loop()
        kept: asyncio.Future[None] = loop.create_future()

        def keep() -> None:
            if len(self.idle) < self.idle_limit:
                self.idle.append(executor)
            else:
                executor.shutdown(wait=False)
            if not kept.done():
                kept.set_result(None)

        def drained(_done: object) -> None:
            try:
                loop.call_soon_threadsafe(keep)
            except RuntimeError:  # the loop is closed: the process is ending
                executor.shutdown(wait=False)

        executor.submit(_nothing).add_done_callback(drained)
        return kept


def _nothing() -> None:
    return None


class OneHopASGIHandler(ASGIHandler):
    """Django's ASGI handler, with the middleware chain and the view run as under WSGI: in one
    call on the request's sync thread.

    Django's own handler runs the chain in async mode. Every middleware here is sync-only or a
    `MiddlewareMixin` (whose async mode calls `process_request` and `process_response` through
    `sync_to_async` one at a time), and every view but one is sync: a request hopped between the
    event loop and its thread about 17 times. Each hop is a thread wake-up and a trip through the
    event loop, which under 1,000 open WebSockets is busy delivering frames; profiled on the
    real-time benchmark, the hops before the view cost ~3.5 ms of the 40 ms from POST to the
    followers' frames (docs/benchmarks.md). Here a request makes three: `request_started`, the
    chain, the response's close. An async view (the inbound email fallback) still works: Django
    calls it with `async_to_sync` from the thread.
    """

    def __init__(self) -> None:
        super().__init__()
        self.threads = RequestThreads()

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self.threads.take()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self.threads.give_back(executor)

    async def get_response_async(self, request: Any) -> Any:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


django.setup(set_prefix=False)
django_asgi_app = OneHopASGIHandler()

import gc  # noqa: E402

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402 - needs apps loaded
from django.conf import settings  # noqa: E402
from django.urls import get_resolver, path  # noqa: E402

from integrations.email.asgi import RawInboundApp  # noqa: E402
from realtime.auth import RealtimeAuthStack  # noqa: E402
from realtime.consumers import StreamConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        # The raw inbound route is answered before Django's handler (integrations/email/asgi.py).
        "http": RawInboundApp(django_asgi_app),
        "websocket": RealtimeAuthStack(URLRouter([path("ws/", StreamConsumer.as_asgi())])),
    }
)


def _settle_garbage_collector() -> None:
    """Web processes only (workers keep Python's defaults): TIDINGS_WEB_GC_* in the settings.

    A full collection walks every object the process tracks. Under 1,000 sockets that was
    about 330,000 objects and a pause of 230-330 ms in every delivery, every 4-5 s of posting
    (docs/benchmarks.md). About 140,000 of them are the code itself: modules, classes and
    functions loaded once and never freed. Frozen (`gc.freeze`), collections no longer walk
    them; the views are loaded first (Django imports them on the first request) so that they
    are among them, and a collection first leaves no garbage to be frozen with them.
    The middle generation's threshold is raised (10 -> 100 young collections) so that what a
    fan-out holds for a moment (a task per delivery, Twisted's pending writes) dies there
    instead of being promoted to the old generation, whose growth is what starts a full
    collection.
    """
    get_resolver().url_patterns  # noqa: B018 - imports every view module
    gc.collect()
    gc.freeze()
    gc.set_threshold(
        settings.TIDINGS_WEB_GC_GEN0_THRESHOLD,
        settings.TIDINGS_WEB_GC_GEN1_THRESHOLD,
        gc.get_threshold()[2],
    )


_settle_garbage_collector()
