"""The integrations' REST API: where an inbound message stands."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.models import InboundEmail
from integrations.queries import get_visible_inbound_email


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
