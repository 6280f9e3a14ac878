"""Mailgun inbound (a route's forward() to this URL), authenticated by Mailgun's signature.

The signature covers only a timestamp and a token, not the body, and the library checks neither's
age nor reuse: a captured post could be replayed forever, with any body. So a post older than
TIDINGS_MAILGUN_MAX_AGE_SECONDS is refused, and each token is accepted once (recorded in the
transaction that stores the message, so a post whose storing failed can be retried).
"""

from __future__ import annotations

import time

from anymail.webhooks.mailgun import MailgunInboundWebhookView
from django.conf import settings
from django.http import HttpRequest

from integrations import actions
from integrations.email.providers import StoreFirstInbound, WebhookRefused, webhook
from integrations.queries import is_webhook_token_seen


def _signature_fields(request: HttpRequest) -> tuple[str, str]:
    return request.POST.get("token", ""), request.POST.get("timestamp", "")


class MailgunInbound(StoreFirstInbound, MailgunInboundWebhookView):
    provider = "mailgun"
    # Mailgun signs every post; basic auth is optional on top.
    requires_basic_auth = False

    def check_request(self, request: HttpRequest) -> None:
        token, timestamp = _signature_fields(request)
        try:
            age = abs(time.time() - int(timestamp))
        except ValueError:
            raise WebhookRefused("no usable timestamp") from None
        if age > settings.TIDINGS_MAILGUN_MAX_AGE_SECONDS:
            raise WebhookRefused(f"timestamp {age:.0f} s away from now")
        if not token or is_webhook_token_seen("mailgun", token):
            raise WebhookRefused("token already used")

    def remember(self, request: HttpRequest) -> None:
        token, _ = _signature_fields(request)
        if not actions.remember_webhook_token(provider="mailgun", token=token):
            raise WebhookRefused("token already used")


inbound = webhook(MailgunInbound)
