"""API-wide wiring: the error format every endpoint shares."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with every 404 worded the same.

    "Not yours" and "does not exist" must be byte-identical to the client, so whatever message
    a lookup raised with, a 404 says only "Not found.".
    """
    response = drf_exception_handler(exc, context)
    if response is not None and response.status_code == 404:
        response.data = {"detail": "Not found."}
    return response


def json_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": "Not found."}, status=404)


def json_server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"detail": "Internal server error."}, status=500)
