"""What the feed pushes, and to which stream. Called by actions inside their transaction."""

from __future__ import annotations

from feed.models import Activity
from feed.serializers import activity_data
from realtime.outbox import record_event


def account_stream(account_id: int) -> str:
    return f"account:{account_id}"


def activity_created(activity: Activity) -> None:
    record_event(
        stream=account_stream(activity.account_id),
        type="activity.created",
        data=activity_data(activity),
    )
