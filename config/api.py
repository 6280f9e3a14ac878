"""API-wide wiring: the error format every endpoint shares."""

from __future__ import annotations

from typing import Any, cast

from django.core.exceptions import ValidationError
from django.http import HttpRequest, JsonResponse
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def request_user(request: Request) -> Any:
    """The caller; every API view requires an authenticated user (DEFAULT_PERMISSION_CLASSES)."""
    return cast(Any, request.user)


def json_object(request: Request) -> dict[str, Any]:
    """The request's JSON object; {} for an empty body (PUT with nothing to say)."""
    if not request._request.body:  # an empty body has no media type to parse
        return {}
    if not isinstance(request.data, dict):
        raise ApiValidationError({"detail": "Send a JSON object."})
    return request.data


def bad_request(error: ValidationError, field: str = "detail") -> ApiValidationError:
    """A domain ValidationError as the API's 400: per field when it names fields."""
    if hasattr(error, "error_dict"):
        return ApiValidationError(error.message_dict)
    return ApiValidationError({field: error.messages})


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
