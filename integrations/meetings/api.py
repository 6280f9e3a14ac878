"""Meeting summaries from another tool (a notetaker, a calendar assistant):
`POST /api/v1/accounts/<id>/meetings/` becomes a `meeting` activity with its notes and decisions,
and each action item a task assigned to the named person.

Another tool knows people by email address more often than by username, so attendees and
assignees may be either; attendees who are neither a colleague who can see the account nor a
contact of it are answered back as `unmatched_attendees`, not refused.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.models import Account, Contact, User
from crm.visibility import can_see_account, get_visible_account
from feed import actions
from feed.models import Activity
from feed.serializers import POST_MAX_CHARS, SUBJECT_MAX_CHARS, activity_data


class SummaryActionItemSerializer(serializers.Serializer[Any]):
    subject = serializers.CharField(max_length=SUBJECT_MAX_CHARS)
    assignee = serializers.CharField(required=False, help_text="Username or email address")
    due_at = serializers.DateTimeField(required=False, allow_null=True)


class MeetingSummarySerializer(serializers.Serializer[Any]):
    subject = serializers.CharField(max_length=SUBJECT_MAX_CHARS)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(required=False, allow_null=True)
    notes = serializers.CharField(max_length=POST_MAX_CHARS, required=False, allow_blank=True)
    attendees = serializers.ListField(
        child=serializers.CharField(max_length=254),
        required=False,
        max_length=200,
        help_text="Usernames or email addresses",
    )
    decisions = serializers.ListField(
        child=serializers.CharField(max_length=SUBJECT_MAX_CHARS), required=False, max_length=50
    )
    action_items = SummaryActionItemSerializer(many=True, required=False, max_length=100)  # type: ignore[call-arg]


def _colleague(name: str) -> User | None:
    people = User.objects.filter(is_active=True)
    if "@" in name:
        return people.filter(email__iexact=name).first()
    return people.filter(username=name).first()


def _contact(account: Account, address: str) -> Contact | None:
    if "@" not in address:
        return None
    return Contact.objects.filter(account=account, emails__address=address.lower()).first()


def _attendees(account: Account, names: list[str]) -> tuple[list[User], list[Contact], list[str]]:
    users: list[User] = []
    contacts: list[Contact] = []
    unmatched: list[str] = []
    for name in dict.fromkeys(n.strip() for n in names if n.strip()):
        colleague = _colleague(name)
        if colleague is not None and can_see_account(colleague, account.pk):
            users.append(colleague)
        elif (contact := _contact(account, name)) is not None:
            contacts.append(contact)
        else:
            unmatched.append(name)
    return users, contacts, unmatched


def _assignee(name: str | None) -> User | None:
    if not name:
        return None
    user = _colleague(name)
    if user is None:
        raise ValidationError({"action_items": f"No active colleague is {name!r}."})
    return user


class AccountMeetingsView(APIView):
    """Record a meeting summary from another tool on the account (the caller must see it)."""

    @extend_schema(
        request=MeetingSummarySerializer,
        responses={
            201: inline_serializer(
                "MeetingSummaryRecorded",
                {
                    "activity": serializers.DictField(),
                    "tasks": serializers.ListField(child=serializers.IntegerField()),
                    "unmatched_attendees": serializers.ListField(child=serializers.CharField()),
                },
            )
        },
    )
    def post(self, request: Request, account_id: int) -> Response:
        account = get_visible_account(request.user, account_id)
        summary = MeetingSummarySerializer(data=request.data)
        summary.is_valid(raise_exception=True)
        data = summary.validated_data
        users, contacts, unmatched = _attendees(account, data.get("attendees", []))
        try:
            with transaction.atomic():
                items = [
                    {
                        "subject": item["subject"],
                        "assignee": _assignee(item.get("assignee")),
                        "due_at": item.get("due_at"),
                    }
                    for item in data.get("action_items", [])
                ]
                meeting = actions.log_meeting(
                    actor=request.user,  # type: ignore[arg-type]
                    account=account,
                    subject=data["subject"],
                    starts_at=data["starts_at"],
                    ends_at=data.get("ends_at"),
                    body=data.get("notes", ""),
                    users=users,
                    contacts=contacts,
                    decisions=data.get("decisions", []),
                    action_items=items,
                )
        except ValidationError as error:
            detail = error.message_dict if hasattr(error, "error_dict") else error.messages
            raise ApiValidationError(detail) from None
        tasks = Activity.objects.filter(
            account=account, kind=Activity.Kind.TASK, details__meeting=meeting.pk
        ).values_list("pk", flat=True)
        body = {
            "activity": activity_data(meeting),
            "tasks": list(tasks),
            "unmatched_attendees": unmatched,
        }
        return Response(body, status=status.HTTP_201_CREATED)
