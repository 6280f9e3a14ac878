"""The unread badge in every page's header, and the cursor its socket resumes from."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from feed.events import notifications_stream
from notifications.queries import unread_count
from realtime.outbox import streams_head


def badge(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    # The cursor first: an event committed between the two reads is then replayed, and each
    # event carries the unread count after it, so the badge ends right either way.
    cursor = streams_head({notifications_stream(user.pk)})
    return {"notifications_cursor": str(cursor), "notifications_unread": unread_count(user)}
