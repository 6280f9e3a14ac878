"""Amazon SES inbound through SNS (a receipt rule's SNS action), authenticated by the basic auth
in the subscription URL and by the SNS signature and topic (integrations/amazon_ses/sns.py).

Only the SNS action is supported (the message is in the notification, up to 150 KB); the S3
action needs boto3 and is refused. Subscription confirmations are verified and logged for an
operator to confirm: confirming by itself would let anyone who triggers one subscribe us.
"""

from __future__ import annotations

import logging
from typing import Any

from anymail.webhooks.amazon_ses import AmazonSESInboundWebhookView
from anymail.webhooks.base import AnymailBaseWebhookView
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from integrations.amazon_ses import sns
from integrations.email.providers import StoreFirstInbound, WebhookRefused, webhook

log = logging.getLogger(__name__)


class AmazonSesInbound(StoreFirstInbound, AmazonSESInboundWebhookView):
    provider = "amazon_ses"

    def __init__(self, **kwargs: Any) -> None:
        # The library's __init__ prepares boto3 sessions (S3 downloads, auto-confirming
        # subscriptions), neither of which this view uses; boto3 is not installed.
        self.auto_confirm_enabled = False
        self.session_params: dict[str, Any] = {}
        self.client_params: dict[str, Any] = {}
        AnymailBaseWebhookView.__init__(self, **kwargs)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # SNS sends the URL's basic auth only after a 401 challenge asks for it.
        if self.basic_auth and not request.META.get("HTTP_AUTHORIZATION"):
            response = HttpResponse(status=401)
            response["WWW-Authenticate"] = 'Basic realm="Tidings inbound"'
            return response
        return super().post(request, *args, **kwargs)

    def check_request(self, request: HttpRequest) -> None:
        message = self._parse_sns_message(request)
        try:
            sns.verify(message, topics=settings.TIDINGS_SES_TOPIC_ARNS, now=timezone.now())
        except sns.InvalidSnsMessage as error:
            raise WebhookRefused(f"SNS: {error}") from None
        if message.get("Type") == "SubscriptionConfirmation":
            log.warning(
                "SNS subscription to %s awaits confirmation: %s",
                message.get("TopicArn"),
                message.get("SubscribeURL"),
            )


inbound = webhook(AmazonSesInbound)
