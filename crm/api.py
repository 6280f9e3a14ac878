from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm import actions
from crm.models import Account, Opportunity, User
from crm.queries import account_summary, get_visible_opportunity, search_accounts
from crm.serializers import (
    AccountDetailSerializer,
    AccountListSerializer,
    OpportunitySerializer,
)
from crm.visibility import get_visible_account


class AccountPagination(CursorPagination):
    ordering = ("name", "id")
    page_size = 50


class AccountListView(ListAPIView[Account]):
    """Accounts the caller can see; `q` searches name, domain and industry."""

    serializer_class = AccountListSerializer
    pagination_class = AccountPagination

    @extend_schema(parameters=[OpenApiParameter("q", str, description="Search text")])
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return search_accounts(self.request.user, self.request.query_params.get("q", ""))


class AccountDetailView(APIView):
    """The 360 summary: the account, its contacts with their addresses, its opportunities."""

    @extend_schema(responses=AccountDetailSerializer)
    def get(self, request: Request, account_id: int) -> Response:
        return Response(AccountDetailSerializer(account_summary(request.user, account_id)).data)


class OpportunityChangeSerializer(serializers.Serializer[Any]):
    """What a client may change on an opportunity; stage, amount, close date and owner are tracked
    into the account's timeline."""

    name = serializers.CharField(max_length=200, required=False)
    stage = serializers.ChoiceField(choices=Opportunity.Stage.choices, required=False)
    forecast_category = serializers.ChoiceField(
        choices=Opportunity.Forecast.choices, required=False
    )
    probability = serializers.IntegerField(min_value=0, max_value=100, required=False)
    amount = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=Decimal(0), required=False
    )
    close_date = serializers.DateField(required=False)
    owner = serializers.CharField(required=False, help_text="Username")


class AccountChangeSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200, required=False)
    industry = serializers.CharField(max_length=80, required=False, allow_blank=True)
    region = serializers.CharField(max_length=80, required=False, allow_blank=True)
    owner = serializers.CharField(required=False, help_text="Username")


def _owner(data: dict[str, Any]) -> dict[str, Any]:
    if "owner" in data:
        owner = User.objects.filter(username=data["owner"], is_active=True).first()
        if owner is None:
            raise ApiValidationError({"owner": f"No active user is called {data['owner']!r}."})
        data = {**data, "owner": owner}
    return data


def _apply(change: Any, **kwargs: Any) -> None:
    try:
        change(**kwargs)
    except ValidationError as error:
        raise ApiValidationError({"detail": error.messages}) from None
    except PermissionDenied as error:
        raise ApiPermissionDenied(str(error)) from None


class AccountChangeView(AccountDetailView):
    @extend_schema(request=AccountChangeSerializer, responses=AccountDetailSerializer)
    def patch(self, request: Request, account_id: int) -> Response:
        account = get_visible_account(request.user, account_id)
        incoming = AccountChangeSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        changes = _owner(dict(incoming.validated_data))
        _apply(actions.update_account, actor=request.user, account=account, **changes)
        return Response(AccountDetailSerializer(account_summary(request.user, account.pk)).data)


class OpportunityView(APIView):
    """One opportunity (GET) and changes to it (PATCH)."""

    @extend_schema(responses=OpportunitySerializer)
    def get(self, request: Request, opportunity_id: int) -> Response:
        return Response(
            OpportunitySerializer(get_visible_opportunity(request.user, opportunity_id)).data
        )

    @extend_schema(request=OpportunityChangeSerializer, responses=OpportunitySerializer)
    def patch(self, request: Request, opportunity_id: int) -> Response:
        opportunity = get_visible_opportunity(request.user, opportunity_id)
        incoming = OpportunityChangeSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        changes = _owner(dict(incoming.validated_data))
        _apply(actions.update_opportunity, actor=request.user, opportunity=opportunity, **changes)
        return Response(OpportunitySerializer(opportunity).data)
