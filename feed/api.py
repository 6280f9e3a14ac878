"""The feed's REST API: timelines, activities of every kind, threads, reactions, follows, the home
feed, search and mention suggestions. Every write goes through `feed.actions`."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import bad_request, json_object, request_user
from crm.models import User
from crm.queries import get_convertible_lead
from crm.serializers import AccountListSerializer, ContactSerializer
from crm.visibility import get_visible_account
from feed import actions
from feed.inputs import new_activity
from feed.mentions import mention_warnings
from feed.models import Activity, Reaction
from feed.queries import (
    RecordPage,
    get_visible_account_timeline_records,
    get_visible_activity,
    home_feed_records,
    is_following,
    mention_suggestions,
    search,
)
from feed.serializers import (
    NEW_ACTIVITY_INPUTS,
    ActivityChangeSerializer,
    ActivityCreatedSerializer,
    ActivitySerializer,
    CommentSerializer,
    LeadConversionSerializer,
    NewActivitySerializer,
    PersonSerializer,
    RevisionSerializer,
    ThreadSerializer,
    activity_json,
    thread_json,
)
from feed.sqlrows import ActivityJSON, page_body


def _page(serializer: type[serializers.Serializer[Any]], name: str) -> Any:
    return inline_serializer(
        name, {"results": serializer(many=True), "next": serializers.CharField(allow_null=True)}
    )


def _page_response(page: RecordPage, *, threads: bool) -> HttpResponse:
    """The page's JSON: joined from the texts PostgreSQL wrote (`feed.sqlrows.ActivityJSON`),
    else DRF's rendering of `thread_json`/`activity_json` (the same bytes). A plain response:
    the DRF renderer would have nothing left to do (content negotiation has already run)."""
    rows = page.results
    if all(isinstance(row, ActivityJSON) for row in rows):
        texts = (row.thread_text() if threads else row.text for row in rows)  # type: ignore[union-attr]
        return HttpResponse(page_body(texts, page.next), content_type="application/json")
    write = thread_json if threads else activity_json
    return Response({"results": [write(row) for row in rows], "next": page.next})  # type: ignore[arg-type]


class AccountActivitiesView(APIView):
    """An account's timeline (GET) and new activities on it (POST)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, enum=Activity.Kind.values),
            OpenApiParameter("author", str, description="Username of the author"),
            OpenApiParameter("q", str, description="Text the activity contains"),
            OpenApiParameter("before", str, description="The `next` cursor of the previous page"),
        ],
        responses=_page(ThreadSerializer, "TimelinePage"),
    )
    def get(self, request: Request, account_id: int) -> HttpResponse:
        params = request.query_params
        kind = params.get("kind") or None
        if kind is not None and kind not in Activity.Kind.values:
            get_visible_account(request.user, account_id)  # 404 before 400, as for the cursor
            choices = ", ".join(Activity.Kind.values)
            raise ApiValidationError({"kind": f"Unknown kind; use one of {choices}."})
        try:
            page = get_visible_account_timeline_records(
                request.user,
                account_id,
                before=params.get("before"),
                kind=kind,
                author=(params.get("author") or None),
                q=(params.get("q") or "").strip()[:200] or None,
            )
        except ValidationError as error:
            raise bad_request(error, "before") from None
        # What ThreadSerializer(many=True) writes, without DRF's field walk; on PostgreSQL the
        # JSON of each thread is written by PostgreSQL itself (feed.sqlrows.ActivityJSONColumns).
        return _page_response(page, threads=True)

    @extend_schema(
        request=PolymorphicProxySerializer(
            "NewActivity",
            serializers=list(NEW_ACTIVITY_INPUTS.values()),
            resource_type_field_name="kind",
        ),
        responses={201: ActivityCreatedSerializer},
    )
    def post(self, request: Request, account_id: int) -> Response:
        account = get_visible_account(request.user, account_id)
        if not isinstance(request.data, dict):
            raise ApiValidationError({"detail": "Send a JSON object."})
        head = NewActivitySerializer(data=request.data)
        head.is_valid(raise_exception=True)
        kind = head.validated_data["kind"]
        incoming = NEW_ACTIVITY_INPUTS[kind](data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            activity = new_activity(
                kind=kind, data=incoming.validated_data, user=request_user(request), account=account
            )
        except ValidationError as error:
            raise bad_request(error) from None
        data = dict(ActivitySerializer(activity).data)
        data["warnings"] = mention_warnings(f"{activity.subject}\n{activity.body}", account)
        return Response(data, status=status.HTTP_201_CREATED)


NOTHING_TO_CHANGE = "Send body, subject, is_done, or a request's status, assignee or priority."


class ActivityDetailView(APIView):
    """One activity with its thread (GET), a change to its text or done state (PATCH), or its
    soft deletion (DELETE: author or administrator; anyone else gets 404)."""

    @extend_schema(responses=ThreadSerializer)
    def get(self, request: Request, activity_id: int) -> Response:
        return Response(ThreadSerializer(get_visible_activity(request.user, activity_id)).data)

    @extend_schema(request=ActivityChangeSerializer, responses=ActivitySerializer)
    def patch(self, request: Request, activity_id: int) -> Response:
        activity = get_visible_activity(request.user, activity_id)
        incoming = ActivityChangeSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        if not data:
            raise ApiValidationError({"detail": NOTHING_TO_CHANGE})
        try:
            if "status" in data or "assignee" in data or "priority" in data:
                assignee = None
                if "assignee" in data:
                    assignee = User.objects.filter(
                        username=data["assignee"], is_active=True
                    ).first()
                    if assignee is None:
                        raise ApiValidationError({"assignee": "Nobody active has that username."})
                activity = actions.update_request(
                    actor=request_user(request),
                    request=activity,
                    status=data.get("status"),
                    assignee=assignee,
                    priority=data.get("priority"),
                    resolution=data.get("resolution", ""),
                )
            if "is_done" in data:
                activity = actions.set_task_done(
                    actor=request_user(request),
                    task=activity,
                    is_done=data["is_done"],
                )
            if "body" in data or "subject" in data:
                activity = actions.edit_activity(
                    actor=request_user(request),
                    activity=activity,
                    body=data.get("body"),
                    subject=data.get("subject"),
                )
        except ValidationError as error:
            raise bad_request(error) from None
        return Response(ActivitySerializer(activity).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, activity_id: int) -> Response:
        activity = get_visible_activity(request.user, activity_id)
        actions.delete_activity(actor=request_user(request), activity=activity)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ActivityCommentsView(APIView):
    """A reply in the activity's thread."""

    @extend_schema(request=CommentSerializer, responses={201: ActivityCreatedSerializer})
    def post(self, request: Request, activity_id: int) -> Response:
        parent = get_visible_activity(request.user, activity_id)
        incoming = CommentSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            comment = actions.add_comment(
                actor=request_user(request),
                parent=parent,
                body=incoming.validated_data["body"],
                is_internal=incoming.validated_data["internal"],
            )
        except ValidationError as error:
            raise bad_request(error, "body") from None
        data = dict(ActivitySerializer(comment).data)
        data["warnings"] = mention_warnings(comment.body, parent.account)
        return Response(data, status=status.HTTP_201_CREATED)


class ActivityRevisionsView(APIView):
    """Every earlier text of the activity, oldest first."""

    @extend_schema(responses=RevisionSerializer(many=True))
    def get(self, request: Request, activity_id: int) -> Response:
        activity = get_visible_activity(request.user, activity_id)
        revisions = activity.revisions.select_related("editor")
        return Response(RevisionSerializer(revisions, many=True).data)


class ActivityReactionView(APIView):
    """Add (PUT) or take back (DELETE) the caller's reaction. Both are idempotent."""

    @extend_schema(request=None, responses=ActivitySerializer)
    def put(self, request: Request, activity_id: int, kind: str) -> Response:
        return self._set(request, activity_id, kind, is_on=True)

    @extend_schema(request=None, responses=ActivitySerializer)
    def delete(self, request: Request, activity_id: int, kind: str) -> Response:
        return self._set(request, activity_id, kind, is_on=False)

    def _set(self, request: Request, activity_id: int, kind: str, *, is_on: bool) -> Response:
        activity = get_visible_activity(request.user, activity_id)
        if kind not in Reaction.Kind.values:
            raise ApiValidationError(
                {"kind": f"Unknown reaction; use {', '.join(Reaction.Kind.values)}."}
            )
        activity = actions.set_reaction(
            actor=request_user(request), activity=activity, kind=kind, is_on=is_on
        )
        return Response(ActivitySerializer(activity).data)


ThreadState = inline_serializer(
    "ThreadState", {"thread": serializers.IntegerField(), "state": serializers.CharField()}
)


class ActivityFollowView(APIView):
    """Follow (PUT `{"muted": false}`) or mute (PUT `{"muted": true}`) one thread; DELETE returns
    it to following whatever its account says."""

    @extend_schema(
        request=inline_serializer(
            "ThreadChoice", {"muted": serializers.BooleanField(default=False)}
        ),
        responses=ThreadState,
    )
    def put(self, request: Request, activity_id: int) -> Response:
        activity = get_visible_activity(request.user, activity_id)
        muted = json_object(request).get("muted", False)
        if not isinstance(muted, bool):
            raise ApiValidationError({"muted": "Must be true or false."})
        subscription = actions.set_thread_subscription(
            user=request_user(request), thread=activity, is_muted=muted
        )
        state = "muted" if subscription.is_muted else "following"
        return Response({"thread": subscription.thread_id, "state": state})

    @extend_schema(request=None, responses=ThreadState)
    def delete(self, request: Request, activity_id: int) -> Response:
        activity = get_visible_activity(request.user, activity_id)
        actions.clear_thread_subscription(user=request_user(request), thread=activity)
        return Response({"thread": actions.thread_root(activity).pk, "state": "default"})


FollowState = inline_serializer(
    "FollowState",
    {
        "account": serializers.IntegerField(),
        "following": serializers.BooleanField(),
        "kinds": serializers.ListField(child=serializers.CharField()),
        "delivery": serializers.CharField(),
    },
)


class AccountFollowView(APIView):
    """Follow (PUT, optionally `{"kinds": [...]}` to see only those and `{"delivery": ...}` —
    `in_app`, `email`, `digest`, `off`, or `""` for your general preference — to choose how you
    hear of it) or stop following (DELETE) an account. Both are idempotent. Owners and
    account-team members keep following through their role, so DELETE may answer
    `"following": true` for them."""

    @extend_schema(
        request=inline_serializer(
            "FollowChoice",
            {
                "kinds": serializers.ListField(child=serializers.CharField(), required=False),
                "delivery": serializers.CharField(required=False, allow_blank=True),
            },
        ),
        responses=FollowState,
    )
    def put(self, request: Request, account_id: int) -> Response:
        account = get_visible_account(request.user, account_id)
        choice = json_object(request)
        kinds, delivery = choice.get("kinds"), choice.get("delivery")
        if kinds is not None and (
            not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds)
        ):
            raise ApiValidationError({"kinds": "Must be a list of activity kinds."})
        if delivery is not None and not isinstance(delivery, str):
            raise ApiValidationError({"delivery": 'Must be in_app, email, digest, off or "".'})
        try:
            follow = actions.follow_account(
                user=request_user(request), account=account, kinds=kinds, delivery=delivery
            )
        except ValidationError as error:
            raise bad_request(error, "delivery" if "delivery" in str(error) else "kinds") from None
        return Response(
            {
                "account": account.pk,
                "following": True,
                "kinds": follow.kinds,
                "delivery": follow.delivery,
            }
        )

    @extend_schema(request=None, responses=FollowState)
    def delete(self, request: Request, account_id: int) -> Response:
        account = get_visible_account(request.user, account_id)
        actions.unfollow_account(user=request_user(request), account=account)
        following = is_following(request.user, account)
        return Response(
            {"account": account.pk, "following": following, "kinds": [], "delivery": ""}
        )


class HomeFeedView(APIView):
    """Everything on the accounts and threads the caller follows, newest first."""

    @extend_schema(
        parameters=[OpenApiParameter("before", str, description="The `next` cursor")],
        responses=_page(ActivitySerializer, "FeedPage"),
    )
    def get(self, request: Request) -> HttpResponse:
        try:
            page = home_feed_records(request.user, before=request.query_params.get("before"))
        except ValidationError as error:
            raise bad_request(error, "before") from None
        # activity_json is what ActivitySerializer(many=True) writes, without DRF's field walk.
        return _page_response(page, threads=False)


class SearchView(APIView):
    """Accounts, contacts and activities the caller can see that match `q`."""

    @extend_schema(
        parameters=[OpenApiParameter("q", str, required=True)],
        responses=inline_serializer(
            "SearchResults",
            {
                "accounts": AccountListSerializer(many=True),
                "contacts": ContactSerializer(many=True),
                "activities": ActivitySerializer(many=True),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        q = request.query_params.get("q", "")
        if not q.strip():
            raise ApiValidationError({"q": "Say what to search for."})
        if "\x00" in q:
            raise ApiValidationError({"q": "The search text contains a null character."})
        found = search(request.user, q)
        return Response(
            {
                "accounts": AccountListSerializer(found["accounts"], many=True).data,
                "contacts": ContactSerializer(found["contacts"], many=True).data,
                "activities": ActivitySerializer(found["activities"], many=True).data,
            }
        )


class MentionSuggestionsView(APIView):
    """People who can see the account and whose name starts with `q`: the composer's @ list."""

    @extend_schema(parameters=[OpenApiParameter("q", str)], responses=PersonSerializer(many=True))
    def get(self, request: Request, account_id: int) -> Response:
        account = get_visible_account(request.user, account_id)
        people = mention_suggestions(request.user, account, request.query_params.get("q", ""))
        return Response(PersonSerializer(people, many=True).data)


class AccountMergeView(APIView):
    """Merge another account into this one (managers and administrators)."""

    @extend_schema(
        request=inline_serializer("MergeRequest", {"from": serializers.IntegerField()}),
        responses=AccountListSerializer,
    )
    def post(self, request: Request, account_id: int) -> Response:
        survivor = get_visible_account(request.user, account_id)
        loser_id = json_object(request).get("from")
        if not isinstance(loser_id, int) or isinstance(loser_id, bool):
            raise ApiValidationError({"from": "The id of the account to merge into this one."})
        loser = get_visible_account(request.user, loser_id)
        try:
            merged = actions.merge_accounts(
                actor=request_user(request), survivor=survivor, loser=loser
            )
        except ValidationError as error:
            raise bad_request(error) from None
        return Response(AccountListSerializer(merged).data)


class ActivityMoveView(APIView):
    """Move a misrouted activity, with its thread, to another account."""

    @extend_schema(
        request=inline_serializer("MoveRequest", {"account": serializers.IntegerField()}),
        responses=ActivitySerializer,
    )
    def post(self, request: Request, activity_id: int) -> Response:
        activity = get_visible_activity(request.user, activity_id)
        target_id = json_object(request).get("account")
        if not isinstance(target_id, int) or isinstance(target_id, bool):
            raise ApiValidationError({"account": "The id of the account to move it to."})
        target = get_visible_account(request.user, target_id)
        try:
            moved = actions.move_activity(
                actor=request_user(request), activity=activity, to_account=target
            )
        except ValidationError as error:
            raise bad_request(error) from None
        return Response(ActivitySerializer(moved).data)


class LeadConvertView(APIView):
    """Turn a lead into Account + Contact + Opportunity in one step."""

    @extend_schema(
        request=inline_serializer(
            "ConvertRequest",
            {
                "opportunity_name": serializers.CharField(required=False),
                "amount": serializers.DecimalField(max_digits=14, decimal_places=2, required=False),
            },
        ),
        responses={201: AccountListSerializer},
    )
    def post(self, request: Request, lead_id: int) -> Response:
        me = request_user(request)
        lead = get_convertible_lead(me, lead_id)
        incoming = LeadConversionSerializer(data=json_object(request))
        incoming.is_valid(raise_exception=True)
        try:
            account = actions.convert_lead(actor=me, lead=lead, **incoming.validated_data)
        except ValidationError as error:
            raise bad_request(error) from None
        return Response(AccountListSerializer(account).data, status=status.HTTP_201_CREATED)
