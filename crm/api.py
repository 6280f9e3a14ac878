from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.models import Account
from crm.queries import account_summary, search_accounts
from crm.serializers import AccountDetailSerializer, AccountListSerializer


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
