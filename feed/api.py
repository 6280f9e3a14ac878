from __future__ import annotations

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.visibility import get_visible_account
from feed.actions import follow_account, post_activity, unfollow_account
from feed.mentions import mention_warnings
from feed.models import Activity
from feed.queries import account_timeline, get_visible_activity, is_following
from feed.serializers import ActivityCreatedSerializer, ActivitySerializer, NewActivitySerializer

TimelinePage = inline_serializer(
    "TimelinePage",
    {
        "results": ActivitySerializer(many=True),
        "next": serializers.CharField(allow_null=True),
    },
)


class AccountActivitiesView(APIView):
    """An account's timeline (GET) and new activities on it (POST)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, enum=Activity.Kind.values),
            OpenApiParameter("before", str, description="The `next` cursor of the previous page"),
        ],
        responses=TimelinePage,
    )
    def get(self, request: Request, account_id: int) -> Response:
        account = get_visible_account(request.user, account_id)
        kind = request.query_params.get("kind") or None
        if kind is not None and kind not in Activity.Kind.values:
            raise ApiValidationError(
                {"kind": f"Unknown kind; use one of {', '.join(Activity.Kind.values)}."}
            )
        try:
            page = account_timeline(
                request.user, account, before=request.query_params.get("before"), kind=kind
            )
        except ValidationError as error:
            raise ApiValidationError({"before": error.messages}) from None
        return Response(
            {"results": ActivitySerializer(page.results, many=True).data, "next": page.next}
        )

    @extend_schema(request=NewActivitySerializer, responses={201: ActivityCreatedSerializer})
    def post(self, request: Request, account_id: int) -> Response:
        account = get_visible_account(request.user, account_id)
        incoming = NewActivitySerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        body = incoming.validated_data["body"]
        try:
            activity = post_activity(author=request.user, account=account, body=body)  # type: ignore[arg-type]
        except ValidationError as error:
            raise ApiValidationError({"body": error.messages}) from None
        data = dict(ActivitySerializer(activity).data)
        data["warnings"] = mention_warnings(body, account)
        return Response(data, status=status.HTTP_201_CREATED)


class ActivityDetailView(APIView):
    @extend_schema(responses=ActivitySerializer)
    def get(self, request: Request, activity_id: int) -> Response:
        return Response(ActivitySerializer(get_visible_activity(request.user, activity_id)).data)


FollowState = inline_serializer(
    "FollowState",
    {"account": serializers.IntegerField(), "following": serializers.BooleanField()},
)


class AccountFollowView(APIView):
    """Follow (PUT) or stop following (DELETE) an account. Both are idempotent.

    Owners and account-team members keep following through their role, so DELETE may answer
    `"following": true` for them.
    """

    @extend_schema(request=None, responses=FollowState)
    def put(self, request: Request, account_id: int) -> Response:
        account = get_visible_account(request.user, account_id)
        follow_account(user=request.user, account=account)  # type: ignore[arg-type]
        return Response({"account": account.pk, "following": True})

    @extend_schema(request=None, responses=FollowState)
    def delete(self, request: Request, account_id: int) -> Response:
        account = get_visible_account(request.user, account_id)
        unfollow_account(user=request.user, account=account)  # type: ignore[arg-type]
        return Response({"account": account.pk, "following": is_following(request.user, account)})
