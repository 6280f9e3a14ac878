"""SendGrid Inbound Parse, authenticated by the basic auth in the webhook URL
(ANYMAIL_WEBHOOK_SECRET). SendGrid sends no message id of its own, so exactly-once rests on the
Message-ID (or the raw bytes); "Send Raw" keeps the original MIME, which is recommended."""

from __future__ import annotations

from anymail.webhooks.sendgrid import SendGridInboundWebhookView

from integrations.email.providers import StoreFirstInbound, webhook


class SendGridInbound(StoreFirstInbound, SendGridInboundWebhookView):
    provider = "sendgrid"


inbound = webhook(SendGridInbound)
