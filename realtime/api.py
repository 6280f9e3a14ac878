from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from realtime.tickets import issue_ticket


class TicketView(APIView):
    """A single-use ticket to open `/ws/?ticket=...` without a session cookie."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "realtime-ticket"

    @extend_schema(
        request=None,
        responses={
            201: inline_serializer(
                "RealtimeTicket",
                {"ticket": serializers.CharField(), "expires_in": serializers.IntegerField()},
            )
        },
    )
    def post(self, request: Request) -> Response:
        ticket, ttl = issue_ticket(user=request.user)
        return Response({"ticket": ticket, "expires_in": ttl}, status=status.HTTP_201_CREATED)
