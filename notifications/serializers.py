"""The JSON of a notification: the REST API's and the `notification.created` event's `data`."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from feed.serializers import PersonSerializer, _person, _when
from notifications.models import Notification


def activity_url(account_id: int, activity_id: int, parent_id: int | None = None) -> str:
    """Where an activity is read: its account page, scrolled to its thread."""
    anchor = parent_id or activity_id
    return reverse("account-detail", args=[account_id]) + f"#activity-{anchor}"


def notification_json(notification: Notification) -> dict[str, Any]:
    return {
        "id": notification.pk,
        "kind": notification.kind,
        "title": notification.title,
        # Where the activity is now (it may have been moved or merged since).
        "account": notification.activity.account_id,
        "account_name": notification.activity.account.name,
        "activity": notification.activity_id,
        "actor": _person(notification.actor) if notification.actor_id else None,
        "created_at": _when(notification.created_at),
        "is_read": notification.read_at is not None,
        "url": activity_url(notification.activity.account_id, notification.activity_id),
    }


class NotificationSerializer(serializers.Serializer[Notification]):
    """Documents `notification_json` (which is what the API answers)."""

    id = serializers.IntegerField()
    kind = serializers.CharField()
    title = serializers.CharField()
    account = serializers.IntegerField()
    account_name = serializers.CharField()
    activity = serializers.IntegerField()
    actor = PersonSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    is_read = serializers.BooleanField()
    url = serializers.CharField()
