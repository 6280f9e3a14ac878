"""The naive Channels peer: what the Channels tutorial leads to, one group per account.

- `/ws/`: a consumer that, on `{"op": "subscribe", "stream": "account:<id>"}`, joins the group
  `account.<id>` of the default channels-redis layer (each connection is its own channel) and
  forwards every group message to its socket.
- `POST /post/<id>/`: a plain Django view saves the post (one INSERT, in a transaction) and then
  `group_send`s it to `account.<id>`; 201 with the post.

No authentication, no visibility checks, no outbox: less work than Tidings on every path, so the
comparison can only flatter this peer.
"""

from __future__ import annotations

import json
import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.naive_settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from asgiref.sync import async_to_sync  # noqa: E402
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402

from bench.env import NAIVE_TABLE  # noqa: E402


class NaiveConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.joined: set[str] = set()
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        content = json.loads(text_data or "null")
        stream = content.get("stream") if isinstance(content, dict) else None
        if not isinstance(stream, str) or content.get("op") != "subscribe":
            return
        kind, _, arg = stream.partition(":")
        if kind == "account" and arg.isdigit():
            group = f"account.{int(arg)}"
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.add(group)
            await self.send(json.dumps({"type": "subscribed", "stream": stream, "cursor": "0"}))

    async def activity_created(self, event: dict[str, Any]) -> None:
        data = event["data"]
        frame = {
            "type": "activity.created",
            "stream": event["stream"],
            "cursor": str(data["id"]),
            "data": data,
        }
        await self.send(text_data=json.dumps(frame, separators=(",", ":")))


def post(request: HttpRequest, account_id: int) -> JsonResponse:
    if request.method != "POST":
        return JsonResponse({"detail": "POST only."}, status=405)
    body = str(json.loads(request.body or b"{}").get("body", ""))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {NAIVE_TABLE} (account_id, body) VALUES (%s, %s)"  # noqa: S608
            " RETURNING id, created_at",
            [account_id, body],
        )
        pk, created_at = cursor.fetchone()
    data = {"id": pk, "account": account_id, "body": body, "created_at": created_at.isoformat()}
    async_to_sync(get_channel_layer().group_send)(
        f"account.{account_id}",
        {"type": "activity.created", "stream": f"account:{account_id}", "data": data},
    )
    return JsonResponse(data, status=201)


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("post/<int:account_id>/", post),
    path("healthz/", healthz),
]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter([path("ws/", NaiveConsumer.as_asgi())]),
    }
)
