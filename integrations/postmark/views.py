"""Postmark inbound, authenticated by the basic auth in the webhook URL (ANYMAIL_WEBHOOK_SECRET),
which is all Postmark offers. Postmark's MessageID keys the message for exactly-once."""

from __future__ import annotations

from anymail.webhooks.postmark import PostmarkInboundWebhookView

from integrations.email.providers import StoreFirstInbound, webhook


class PostmarkInbound(StoreFirstInbound, PostmarkInboundWebhookView):
    provider = "postmark"


inbound = webhook(PostmarkInbound)
