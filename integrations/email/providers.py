"""What every provider webhook shares: authenticate, then store first, through the same door as
the raw endpoint (`accept_inbound_email`).

django-anymail authenticates each provider and turns its post into a MIME message; instead of
sending anymail's `inbound` signal (whose receivers would parse and match inside the request),
these views store the message's bytes and answer at once. Processing is the worker's, as for raw
posts. A provider whose secret is not configured is refused: anymail only warns.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

from anymail.exceptions import AnymailError, AnymailWebhookValidationFailure
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import RawPostDataException
from django.views.decorators.csrf import csrf_exempt

from integrations import actions

log = logging.getLogger(__name__)


class WebhookRefused(Exception):
    """Authentication beyond the library's failed (stale, replayed, unknown topic)."""


class StoreFirstInbound:
    """Mixin for an anymail inbound view: `provider` names the rows it stores.

    Subclasses may add `check_request(request)` (run after anymail's own validators, before
    anything is parsed) and `remember(request)` (run in the transaction that stores the
    message, e.g. to record a one-time token).
    """

    provider = ""
    requires_basic_auth = True
    basic_auth: Any
    run_validators: Callable[[HttpRequest], None]
    parse_events: Callable[[HttpRequest], list[Any]]

    def check_request(self, request: HttpRequest) -> None:
        """Extra authentication; raise WebhookRefused."""

    def remember(self, request: HttpRequest) -> None:
        """Record what must be recorded with the message (inside its transaction)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if self.requires_basic_auth and not self.basic_auth:
            return _refuse(403, "This provider's webhook secret is not configured.")
        try:
            self.run_validators(request)
            self.check_request(request)
        except (AnymailWebhookValidationFailure, WebhookRefused) as error:
            log.warning("%s webhook refused: %s", self.provider, error)
            return _refuse(403, "The webhook could not be authenticated.")
        except AnymailError as error:
            # Not even the envelope (SNS JSON, form fields) can be read: nothing to authenticate.
            log.warning("%s webhook unreadable: %s", self.provider, type(error).__name__)
            return _refuse(400, "The webhook payload is not a post of this provider.")
        try:
            events = self.parse_events(request)
        except (AnymailError, KeyError, ValueError, RawPostDataException) as error:
            log.warning("%s webhook unreadable: %s", self.provider, type(error).__name__)
            return _refuse(400, "The webhook payload is not an inbound message we can read.")
        try:
            with transaction.atomic():
                self.remember(request)
                stored = [
                    actions.accept_inbound_email(
                        raw=event.message.as_bytes(),
                        provider=self.provider,
                        provider_id=str(event.event_id or ""),
                    )
                    for event in events
                ]
        except WebhookRefused as error:
            log.warning("%s webhook refused: %s", self.provider, error)
            return _refuse(403, "The webhook could not be authenticated.")
        except DatabaseError:
            log.exception("storing a %s inbound message failed", self.provider)
            return _refuse(503, "The message could not be stored; try again.")
        answers = [
            {"id": a.inbound.pk, "status": "duplicate" if a.is_duplicate else "queued"}
            for a in stored
        ]
        return JsonResponse({"messages": answers})


def _refuse(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status)


def webhook(view_class: Any) -> Callable[[HttpRequest], HttpResponse]:
    """The URL's view: `view_class` refusing (not crashing) when the provider's keys are unset."""
    with warnings.catch_warnings():
        # anymail warns at start-up about unset secrets and unsupported providers; this module
        # refuses such posts instead, so the warnings would only be noise.
        warnings.simplefilter("ignore")
        view = view_class.as_view()

    @csrf_exempt
    def endpoint(request: HttpRequest) -> HttpResponse:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return view(request)  # type: ignore[no-any-return]
        except ImproperlyConfigured:
            return _refuse(403, "This provider's webhook keys are not configured.")

    return endpoint
