"""What the notifications app pushes: to the recipient's own `notifications` stream only."""

from __future__ import annotations

from feed.events import notifications_stream
from notifications.models import Notification
from notifications.serializers import notification_json
from realtime.outbox import record_event, record_events

NOTIFICATION_CREATED = "notification.created"
NOTIFICATION_READ = "notification.read"


def notifications_created(made: list[tuple[Notification, int]]) -> None:
    """One `notification.created` per notification, to its recipient's stream: `data` is the
    notification as the API shows it plus the recipient's unread count. All in one write."""
    record_events(
        [
            (
                notifications_stream(item.recipient_id),
                NOTIFICATION_CREATED,
                notification_json(item) | {"unread": unread},
                "",
            )
            for item, unread in made
        ]
    )


def notifications_read(user_id: int, *, ids: list[int] | None, unread: int) -> None:
    """Every open tab of the reader clears them; `ids` None means all of them."""
    record_event(
        stream=notifications_stream(user_id),
        type=NOTIFICATION_READ,
        data={"ids": ids, "all": ids is None, "unread": unread},
    )
