"""The notifications REST API: the inbox, marking read, and one's preferences."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import bad_request, json_object, request_user
from crm.models import User
from notifications import actions
from notifications.models import Delivery, Kind, Schedule
from notifications.queries import inbox, preferences_of, schedule_of, unread_count
from notifications.serializers import NotificationSerializer, notification_json


class NotificationListView(APIView):
    """Your notifications, newest first (`before` is the previous page's `next`); `unread=1` for
    unread ones only. `unread` in the answer counts all your unread notifications."""

    @extend_schema(
        parameters=[
            OpenApiParameter("before", str, description="The `next` of the previous page."),
            OpenApiParameter("unread", bool, description="Only unread notifications."),
        ],
        responses=inline_serializer(
            "NotificationPage",
            {
                "results": NotificationSerializer(many=True),
                "next": serializers.CharField(allow_null=True),
                "unread": serializers.IntegerField(),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        unread_only = request.query_params.get("unread", "") in ("1", "true", "yes")
        try:
            page = inbox(
                request.user, before=request.query_params.get("before"), unread_only=unread_only
            )
        except ValidationError as error:
            raise ApiValidationError({"before": error.messages}) from None
        return Response(
            {
                "results": [notification_json(item) for item in page.results],
                "next": page.next,
                "unread": page.unread,
            }
        )


class NotificationReadView(APIView):
    """Mark notifications read: `{"ids": [1, 2]}` for some, `{"all": true}` for all of them.
    Ids that are not yours are refused (400) and nothing changes. Every open tab of yours hears
    of it (`notification.read`)."""

    @extend_schema(
        request=inline_serializer(
            "NotificationRead",
            {
                "ids": serializers.ListField(child=serializers.IntegerField(), required=False),
                "all": serializers.BooleanField(required=False),
            },
        ),
        responses=inline_serializer(
            "NotificationReadResult",
            {"marked": serializers.IntegerField(), "unread": serializers.IntegerField()},
        ),
    )
    def post(self, request: Request) -> Response:
        body = json_object(request)
        ids, everything = body.get("ids"), body.get("all", False)
        if not isinstance(everything, bool):
            raise ApiValidationError({"all": "Must be true or false."})
        if everything == (ids is not None):
            raise ApiValidationError({"detail": 'Send either {"ids": [...]} or {"all": true}.'})
        if ids is not None and (
            not isinstance(ids, list)
            or not ids
            or len(ids) > 1000
            or not all(isinstance(pk, int) and not isinstance(pk, bool) for pk in ids)
        ):
            raise ApiValidationError({"ids": "A list of 1 to 1000 notification ids."})
        try:
            marked = actions.mark_read(user=request_user(request), ids=ids)
        except ValidationError as error:
            raise bad_request(error) from None
        return Response({"marked": marked, "unread": unread_count(request.user)})


PreferencesSerializer = inline_serializer(
    "NotificationPreferences",
    {
        "kinds": serializers.DictField(
            child=serializers.ChoiceField(choices=Delivery.choices),
            help_text=f"Delivery per kind; kinds: {', '.join(Kind.values)}.",
        ),
        "schedule": inline_serializer(
            "NotificationSchedule",
            {
                "timezone": serializers.CharField(),
                "digest": serializers.ChoiceField(choices=Schedule.Digest.choices),
                "digest_hour": serializers.IntegerField(min_value=0, max_value=23),
                "reminder_minutes": serializers.IntegerField(min_value=1, max_value=1440),
            },
        ),
    },
)


def _preferences(user: User) -> dict[str, Any]:
    schedule = schedule_of(user)
    return {
        "kinds": preferences_of(user),
        "schedule": {
            "timezone": schedule.timezone,
            "digest": schedule.digest,
            "digest_hour": schedule.digest_hour,
            "reminder_minutes": schedule.reminder_minutes,
        },
    }


class NotificationPreferencesView(APIView):
    """How each kind of notification reaches you (`in_app`, `email` — in the app and by email —,
    `digest`, `off`) and when (time zone, digest frequency and hour, meeting reminder lead time).
    PATCH any part; an unknown kind, delivery or setting is refused (400) and nothing changes."""

    @extend_schema(responses=PreferencesSerializer)
    def get(self, request: Request) -> Response:
        return Response(_preferences(request_user(request)))

    @extend_schema(request=PreferencesSerializer, responses=PreferencesSerializer)
    def patch(self, request: Request) -> Response:
        body = json_object(request)
        unknown = set(body) - {"kinds", "schedule"}
        kinds, schedule = body.get("kinds", {}), body.get("schedule", {})
        if unknown:
            raise ApiValidationError({name: "Not a preference." for name in sorted(unknown)})
        if not isinstance(kinds, dict) or not all(isinstance(v, str) for v in kinds.values()):
            raise ApiValidationError({"kinds": "An object of kind: delivery."})
        if not isinstance(schedule, dict):
            raise ApiValidationError({"schedule": "An object of settings."})
        user = request_user(request)
        try:
            actions.update_preferences(user=user, kinds=kinds, schedule=schedule)
        except ValidationError as error:
            raise bad_request(error) from None
        return Response(_preferences(user))
