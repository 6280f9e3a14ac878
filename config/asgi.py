"""ASGI entry point: HTTP to Django, `/ws/` to the real-time consumer."""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler


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

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: Any) -> Any:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


django.setup(set_prefix=False)
django_asgi_app = OneHopASGIHandler()

import gc  # noqa: E402

from django.conf import settings  # noqa: E402

# Web processes only (workers keep Python's default): see TIDINGS_WEB_GC_GEN0_THRESHOLD.
_, _gen1, _gen2 = gc.get_threshold()
gc.set_threshold(settings.TIDINGS_WEB_GC_GEN0_THRESHOLD, _gen1, _gen2)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402 - needs apps loaded
from django.urls import path  # noqa: E402

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
