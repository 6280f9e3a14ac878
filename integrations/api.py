"""The integrations' REST API: where an inbound message stands."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.visibility import get_visible_account
from integrations import actions
from integrations.models import InboundEmail
from integrations.queries import get_visible_inbound_email, logging_address_of


class InboundEmailStatusSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=InboundEmail.Status.choices)
    account = serializers.IntegerField(allow_null=True, source="account_id")
    activity = serializers.IntegerField(allow_null=True, source="activity_id")
    reason = serializers.CharField()


class InboundEmailStatusView(APIView):
    """Where an accepted message stands: queued, processed (with its account and activity),
    unmatched (in triage), duplicate, rejected or failed, with the reason. 404 for a message the
    caller may not see (on an account they cannot see, or unmatched and not theirs)."""

    @extend_schema(responses=InboundEmailStatusSerializer)
    def get(self, request: Request, inbound_id: int) -> Response:
        inbound = get_visible_inbound_email(request.user, inbound_id)
        return Response(InboundEmailStatusSerializer(inbound).data)


class LoggingAddressSerializer(serializers.Serializer[Any]):
    address = serializers.CharField(allow_null=True)


class AccountLoggingAddressView(APIView):
    """The account's logging address: mail sent, copied or forwarded to it lands on the account.
    GET answers the current one (null when none was made); POST makes a new one and retires the
    old (after a leak, say)."""

    @extend_schema(responses=LoggingAddressSerializer)
    def get(self, request: Request, account_id: int) -> Response:
        account = get_visible_account(request.user, account_id)
        address = logging_address_of(account)
        return Response({"address": address.address if address else None})

    @extend_schema(request=None, responses={201: LoggingAddressSerializer})
    def post(self, request: Request, account_id: int) -> Response:
        account = get_visible_account(request.user, account_id)
        address = actions.renew_logging_address(actor=request.user, account=account)  # type: ignore[arg-type]
        return Response({"address": address.address}, status=201)
