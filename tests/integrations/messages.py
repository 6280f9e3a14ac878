"""Messages built like the real ones, signed posts, and processing as the worker does it.

Messages are processed by calling the action the Celery task calls (`process_inbound_email`),
the same code the worker runs; tests/service/ runs the real worker.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from django.test import Client

from feed.models import Activity
from integrations import actions
from integrations.models import InboundEmail

SECRET = "test-inbound-secret-0123456789abcdef"
FIXTURES = Path(__file__).parent / "fixtures"


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_raw(client: Client, body: bytes, *, sign: str | None = None) -> Any:
    header = signature(body) if sign is None else sign
    return client.generic(
        "POST",
        "/integrations/email/inbound/raw/",
        body,
        content_type="message/rfc822",
        HTTP_X_TIDINGS_SIGNATURE=header,
    )


def email(
    *,
    sender: str = "Maria Garcia <maria@acme.example>",
    to: str = "Alice Moreau <alice@tidings.example>",
    cc: str = "",
    subject: str = "Renewal questions",
    body: str = "Hi Alice,\n\nCould we talk about the renewal next week?\n\nMaria",
    html: str = "",
    message_id: str | None = None,
    in_reply_to: str = "",
    references: str = "",
    headers: dict[str, str] | None = None,
    attachments: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
    calendar: str = "",
    date: dt.datetime | None = None,
) -> bytes:
    """A message as a mail client writes it (the stdlib composes real MIME)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message["Date"] = format_datetime(date or dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC))
    if message_id != "":
        message["Message-ID"] = message_id or make_msgid(domain="mail.acme.example")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    if calendar:
        message.add_alternative(calendar, subtype="calendar", params={"method": "REQUEST"})
    for filename, content_type, content in attachments:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def ingest(raw: bytes, **options: Any) -> InboundEmail:
    """Accept and process one message, as the endpoint and the worker do."""
    accepted = actions.accept_inbound_email(raw=raw, **options)
    actions.process_inbound_email(inbound_id=accepted.inbound.pk)
    accepted.inbound.refresh_from_db()
    return accepted.inbound


def request_by_mail(**message: Any) -> Activity:
    """The request a customer raises by writing to the support address (Maria, by default)."""
    fields: dict[str, Any] = {
        "to": "Acme Support <support@inbound.tidings.example>",
        "subject": "Invoices will not download",
        "body": "Hello,\n\nThe invoice page shows an error since Monday.\n\nMaria",
    }
    inbound = ingest(email(**(fields | message)))
    assert inbound.status == InboundEmail.Status.PROCESSED, inbound.reason
    return Activity.objects.get(kind="request", details__email=inbound.activity_id)
