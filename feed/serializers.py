"""The JSON shape of an activity: the REST API's and the WebSocket event's `data`.

Serialising a page of activities reads only what `feed.queries` fetched (authors, assignees and
replies are prefetched; reactions and attendees are stored on the row), so a page costs a fixed
number of queries.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from crm.models import User
from feed.models import Activity

POST_MAX_CHARS = 10_000
SUBJECT_MAX_CHARS = 300


class PersonSerializer(serializers.ModelSerializer[User]):
    display_name = serializers.CharField(read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "display_name"]
        read_only_fields = fields


def _when(value: dt.datetime | None) -> str | None:
    """ISO 8601 the way DRF writes it (UTC as "Z")."""
    if value is None:
        return None
    # Rows come back in UTC already; converting each of a page's ~130 datetimes was measurable.
    text = (value if value.tzinfo is dt.UTC else timezone.localtime(value, dt.UTC)).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _person(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "username": user.username, "display_name": user.display_name}


def activity_json(activity: Activity) -> dict[str, Any]:
    """The JSON of one activity: the single definition of the shape that `ActivitySerializer`
    documents (on PostgreSQL the API's pages have it written by the database, byte for byte the
    same: `feed.sqlrows.ActivityJSONColumns`). Written by hand because a
    timeline page serialises dozens of rows and DRF's field machinery cost more than the
    queries (see docs/benchmarks-feed.md)."""
    is_task = activity.kind == Activity.Kind.TASK
    is_overdue = (
        activity.due_at is not None
        and activity.done_at is None
        and not (activity.kind == Activity.Kind.REQUEST and activity.status == "resolved")
        and activity.due_at < timezone.now()
    )
    return {
        "id": activity.pk,
        "kind": activity.kind,
        "account": activity.account_id,
        "contact": activity.contact_id,
        "opportunity": activity.opportunity_id,
        "parent": activity.parent_id,
        "author": _person(activity.author) if activity.author_id else None,
        "subject": activity.subject,
        "body": activity.body,
        "occurred_at": _when(activity.occurred_at),
        "created_at": _when(activity.created_at),
        "is_edited": activity.edited_at is not None,
        "assignee": _person(activity.assignee) if activity.assignee_id else None,
        "due_at": _when(activity.due_at),
        "is_done": (activity.done_at is not None) if is_task else None,
        "is_overdue": is_overdue,
        "starts_at": _when(activity.starts_at),
        "ends_at": _when(activity.ends_at),
        "duration_seconds": activity.duration_seconds,
        "outcome": activity.outcome,
        "status": activity.status,
        "priority": activity.priority,
        "queue": activity.queue_id,
        "details": activity.details,
        "reactions": activity.reaction_summary,
        # A comment that is an internal note on a request (feed.actions.add_comment).
        "internal": (
            activity.kind == Activity.Kind.COMMENT and bool(activity.details.get("internal"))
        ),
    }


def thread_json(activity: Activity) -> dict[str, Any]:
    """An activity with its (prefetched) replies, as a timeline shows it."""
    data = activity_json(activity)
    data["replies"] = [activity_json(r) for r in activity.replies.all() if r.deleted_at is None]
    return data


class ActivitySerializer(serializers.ModelSerializer[Activity]):
    author = PersonSerializer(read_only=True, allow_null=True)
    assignee = PersonSerializer(read_only=True, allow_null=True)
    account = serializers.IntegerField(source="account_id", read_only=True)
    contact = serializers.IntegerField(source="contact_id", read_only=True, allow_null=True)
    opportunity = serializers.IntegerField(source="opportunity_id", read_only=True, allow_null=True)
    # DRF pops declared fields off the class, so this does not shadow Field.parent at run time.
    parent = serializers.IntegerField(source="parent_id", read_only=True, allow_null=True)  # type: ignore[assignment]
    is_edited = serializers.SerializerMethodField()
    is_done = serializers.SerializerMethodField()
    is_overdue = serializers.SerializerMethodField()
    reactions = serializers.JSONField(source="reaction_summary", read_only=True)
    queue = serializers.IntegerField(source="queue_id", read_only=True, allow_null=True)
    internal = serializers.SerializerMethodField(
        help_text="An internal note on a request: shown to colleagues, never sent to a customer."
    )

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
            "occurred_at",
            "created_at",
            "is_edited",
            "assignee",
            "due_at",
            "is_done",
            "is_overdue",
            "starts_at",
            "ends_at",
            "duration_seconds",
            "outcome",
            "status",
            "priority",
            "queue",
            "details",
            "reactions",
            "internal",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Activity) -> dict[str, Any]:
        return activity_json(instance)

    def get_is_edited(self, activity: Activity) -> bool:
        return activity.edited_at is not None

    def get_is_done(self, activity: Activity) -> bool | None:
        if activity.kind != Activity.Kind.TASK:
            return None
        return activity.done_at is not None

    def get_internal(self, activity: Activity) -> bool:
        return bool(activity_json(activity)["internal"])

    def get_is_overdue(self, activity: Activity) -> bool:
        if activity.due_at is None or activity.done_at is not None:
            return False
        if activity.kind == Activity.Kind.REQUEST and activity.status == "resolved":
            return False
        return activity.due_at < timezone.now()


class ThreadSerializer(ActivitySerializer):
    """A timeline entry: the activity and its replies, in order."""

    replies = serializers.SerializerMethodField()

    class Meta(ActivitySerializer.Meta):
        fields = [*ActivitySerializer.Meta.fields, "replies"]
        read_only_fields = fields

    def to_representation(self, instance: Activity) -> dict[str, Any]:
        return thread_json(instance)

    def get_replies(self, activity: Activity) -> list[dict[str, Any]]:
        return thread_json(activity)["replies"]  # documents the field; output is thread_json


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
    return activity_json(activity)


# --- What clients send. Each kind reads only its own fields; anything else is ignored. ---------

CALL_OUTCOMES = ["connected", "left_voicemail", "no_answer", "busy", "wrong_number"]


class NewActivitySerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(
        choices=["post", "meeting", "call", "task", "request"], default="post"
    )


class NewPostSerializer(serializers.Serializer[Any]):
    body = serializers.CharField(max_length=POST_MAX_CHARS)


class NewTaskSerializer(serializers.Serializer[Any]):
    subject = serializers.CharField(max_length=SUBJECT_MAX_CHARS)
    body = serializers.CharField(max_length=POST_MAX_CHARS, required=False, allow_blank=True)
    assignee = serializers.CharField(required=False, help_text="Username; the caller when omitted.")
    due_at = serializers.DateTimeField(required=False, allow_null=True)
    contact = serializers.IntegerField(required=False, allow_null=True)


class NewCallSerializer(serializers.Serializer[Any]):
    subject = serializers.CharField(max_length=SUBJECT_MAX_CHARS, required=False, allow_blank=True)
    body = serializers.CharField(max_length=POST_MAX_CHARS, required=False, allow_blank=True)
    contact = serializers.IntegerField(required=False, allow_null=True)
    occurred_at = serializers.DateTimeField(required=False, allow_null=True)
    duration_minutes = serializers.IntegerField(min_value=0, max_value=24 * 60, required=False)
    outcome = serializers.ChoiceField(choices=CALL_OUTCOMES, default="connected")


class ActionItemSerializer(serializers.Serializer[Any]):
    subject = serializers.CharField(max_length=SUBJECT_MAX_CHARS)
    assignee = serializers.CharField(required=False)
    due_at = serializers.DateTimeField(required=False, allow_null=True)


class NewMeetingSerializer(serializers.Serializer[Any]):
    subject = serializers.CharField(max_length=SUBJECT_MAX_CHARS)
    body = serializers.CharField(
        max_length=POST_MAX_CHARS, required=False, allow_blank=True, help_text="Notes"
    )
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(required=False, allow_null=True)
    attendees = serializers.ListField(
        child=serializers.CharField(), required=False, max_length=100, help_text="Usernames"
    )
    contacts = serializers.ListField(
        child=serializers.IntegerField(), required=False, max_length=100, help_text="Contact ids"
    )
    decisions = serializers.ListField(
        child=serializers.CharField(max_length=SUBJECT_MAX_CHARS), required=False, max_length=50
    )
    action_items = ActionItemSerializer(many=True, required=False)


REQUEST_PRIORITIES = ["low", "normal", "high", "urgent"]


class NewRequestSerializer(serializers.Serializer[Any]):
    """A new request. Its status, assignee and author are not the raiser's to choose: they are
    not fields here, so a client sending them is ignored (RELIABILITY.md, mass assignment)."""

    subject = serializers.CharField(max_length=SUBJECT_MAX_CHARS)
    body = serializers.CharField(max_length=POST_MAX_CHARS, required=False, allow_blank=True)
    priority = serializers.ChoiceField(choices=REQUEST_PRIORITIES, default="normal")
    queue = serializers.IntegerField(
        required=False, allow_null=True, help_text="Queue id; the default queue when omitted."
    )
    due_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="When omitted, follows from the priority."
    )


NEW_ACTIVITY_INPUTS: dict[str, type[serializers.Serializer[Any]]] = {
    "post": NewPostSerializer,
    "task": NewTaskSerializer,
    "call": NewCallSerializer,
    "meeting": NewMeetingSerializer,
    "request": NewRequestSerializer,
}


class CommentSerializer(serializers.Serializer[Any]):
    body = serializers.CharField(max_length=POST_MAX_CHARS)
    internal = serializers.BooleanField(
        default=False,
        help_text="An internal note (requests only; 400 on any other thread). Never emailed to "
        "the customer.",
    )


class ActivityChangeSerializer(serializers.Serializer[Any]):
    """PATCH: the text (its author), a task's done state (assignee or author), a request's status
    and assignee (support staff, managers; the assignee may move the status). Nothing else can
    change this way; other fields are ignored."""

    body = serializers.CharField(max_length=POST_MAX_CHARS, required=False, allow_blank=True)
    subject = serializers.CharField(max_length=SUBJECT_MAX_CHARS, required=False, allow_blank=True)
    is_done = serializers.BooleanField(required=False)
    status = serializers.ChoiceField(
        choices=["open", "in_progress", "waiting", "resolved"], required=False
    )
    assignee = serializers.CharField(required=False, help_text="Username (requests only).")
    priority = serializers.ChoiceField(
        choices=REQUEST_PRIORITIES, required=False, help_text="Requests only; moves the due time."
    )
    resolution = serializers.CharField(
        max_length=POST_MAX_CHARS, required=False, allow_blank=True, help_text="With resolved."
    )


class RevisionSerializer(serializers.Serializer[Any]):
    editor = PersonSerializer()
    subject = serializers.CharField()
    body = serializers.CharField()
    edited_at = serializers.DateTimeField()


class LeadConversionSerializer(serializers.Serializer[Any]):
    opportunity_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    amount = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=Decimal(0), required=False
    )
