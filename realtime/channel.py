"""The one door to the channel layer.

Group names are built here from stream names and never taken from a client. Nothing else in the
code base touches `channel_layer`.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer

log = logging.getLogger(__name__)

# The consumer method that receives stream events ("stream.event" -> `stream_event`).
EVENT_MESSAGE_TYPE = "stream.event"


def group_for_stream(stream: str) -> str:
    """A channel-layer group name for a server-built stream name.

    Group names allow only ASCII letters, digits, '-', '_' and '.', so the stream is hashed; the
    readable prefix keeps `redis-cli monitor` usable.
    """
    kind = stream.split(":", 1)[0]
    digest = hashlib.sha1(stream.encode(), usedforsecurity=False).hexdigest()[:20]
    return f"tidings.{kind[:20]}.{digest}"


def publish_message(message: dict[str, Any]) -> None:
    """Send one outbox event to its stream's group (sync callers: actions after commit)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            group_for_stream(str(message["stream"])),
            {"type": EVENT_MESSAGE_TYPE, "event": message},
        )
    except Exception:
        # The event is committed: subscribers recover it by cursor catch-up. A broken channel
        # layer must not turn a committed write into an error for the writer.
        log.exception("could not publish event %s to the channel layer", message.get("id"))


def _layer() -> BaseChannelLayer:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("CHANNEL_LAYERS has no default layer; see config/settings.py.")
    return layer


async def join(stream: str, channel_name: str) -> None:
    await _layer().group_add(group_for_stream(stream), channel_name)


async def leave(stream: str, channel_name: str) -> None:
    await _layer().group_discard(group_for_stream(stream), channel_name)
