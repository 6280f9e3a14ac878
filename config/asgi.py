"""ASGI entry point: HTTP to Django, `/ws/` to the real-time consumer."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

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
