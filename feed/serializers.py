"""The JSON shape of an activity: the REST API's and the WebSocket event's `data`."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from crm.models import User
from feed.models import Activity

POST_MAX_CHARS = 10_000


class PersonSerializer(serializers.ModelSerializer[User]):
    display_name = serializers.CharField(read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "display_name"]
        read_only_fields = fields


class ActivitySerializer(serializers.ModelSerializer[Activity]):
    author = PersonSerializer(read_only=True, allow_null=True)
    account = serializers.IntegerField(source="account_id", read_only=True)
    contact = serializers.IntegerField(source="contact_id", read_only=True, allow_null=True)
    opportunity = serializers.IntegerField(source="opportunity_id", read_only=True, allow_null=True)
    # DRF pops declared fields off the class, so this does not shadow Field.parent at run time.
    parent = serializers.IntegerField(source="parent_id", read_only=True, allow_null=True)  # type: ignore[assignment]
    is_edited = serializers.SerializerMethodField()

    class Meta:
        model = Activity
        fields = [
            "id",
            "kind",
            "account",
            "contact",
            "opportunity",
            "parent",
            "author",
            "subject",
            "body",
            "details",
            "occurred_at",
            "created_at",
            "is_edited",
        ]
        read_only_fields = fields

    def get_is_edited(self, activity: Activity) -> bool:
        return activity.edited_at is not None


class NewActivitySerializer(serializers.Serializer[Any]):
    """What a client may send to create an activity. Nothing else is read from the request."""

    kind = serializers.ChoiceField(choices=[Activity.Kind.POST], default=Activity.Kind.POST)
    body = serializers.CharField(max_length=POST_MAX_CHARS, trim_whitespace=True)


class MentionWarningSerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    username = serializers.CharField()
    detail = serializers.CharField()


class ActivityCreatedSerializer(ActivitySerializer):
    warnings = MentionWarningSerializer(many=True, read_only=True)

    class Meta(ActivitySerializer.Meta):
        fields = [*ActivitySerializer.Meta.fields, "warnings"]
        read_only_fields = fields


def activity_data(activity: Activity) -> dict[str, Any]:
    return dict(ActivitySerializer(activity).data)
