"""What the outside world sends us, kept as it came: inbound email, its attachments, the
addresses and rules that route it, and the provider tokens already seen.

Models hold data and its constraints only; every change goes through `integrations.actions`.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import PurePath
from typing import Any

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import LazyObject


class InboundEmail(models.Model):
    """One accepted message, stored raw before anything reads it.

    Exactly once: the unique constraints below are what keep a message posted twice (at once, or
    by two providers) to one row; the accepting action relies on them, never on a read-then-write.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PROCESSED = "processed", "Processed"
        UNMATCHED = "unmatched", "Unmatched (in triage)"
        DUPLICATE = "duplicate", "Duplicate"
        REJECTED = "rejected", "Rejected (auto-reply, bounce or burst)"
        FAILED = "failed", "Failed"

    raw = models.BinaryField()
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    # Without the angle brackets; "" when the message has none (then the raw hash is the key).
    message_id = models.CharField(max_length=255, blank=True)
    provider = models.CharField(max_length=20, default="raw")
    provider_id = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=300, blank=True)
    # How the account was found: thread, logging-address, rule, contact, domain, triage.
    matched_by = models.CharField(max_length=20, blank=True)
    account = models.ForeignKey(
        "crm.Account",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="inbound_emails",
    )
    activity = models.ForeignKey(
        "feed.Activity",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="inbound_emails",
    )
    # Filled in by processing, for triage, burst counting and "mail from this address".
    from_address = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    # Every address of the message, space-separated with a space at both ends, so that
    # "mail that involves x" is a `contains " x "` query on any database.
    participants = models.TextField(blank=True)
    is_verified = models.BooleanField(default=False)
    is_auto = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    # When a worker last took the message: a lease, so that a second delivery of the same task
    # does not run alongside the first (see integrations.actions.process_inbound_email).
    claimed_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["message_id"],
                condition=~Q(message_id=""),
                name="integrations_unique_message_id",
            ),
            models.UniqueConstraint(
                fields=["provider", "provider_id"],
                condition=~Q(provider_id=""),
                name="integrations_unique_provider_id",
            ),
            models.UniqueConstraint(
                fields=["sha256"],
                condition=Q(message_id=""),
                name="integrations_unique_raw_without_message_id",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-received_at"], name="integrations_inbound_status"),
            models.Index(fields=["from_address", "received_at"], name="integrations_inbound_from"),
        ]

    def __str__(self) -> str:
        return f"inbound #{self.pk} ({self.status})"

    @property
    def raw_bytes(self) -> bytes:
        # PostgreSQL hands back a memoryview, SQLite bytes.
        return bytes(self.raw)


class _AttachmentStorage(LazyObject):
    """Attachments live outside the static and media trees and are only ever served by the
    download view, which checks access first."""

    def _setup(self) -> None:
        self._wrapped = FileSystemStorage(location=settings.TIDINGS_ATTACHMENT_DIR)


attachment_storage: Any = _AttachmentStorage()


def get_attachment_storage() -> Any:
    # A callable, so that migrations name this function instead of freezing today's folder.
    return attachment_storage


def random_attachment_name(instance: InboundAttachment, filename: str) -> str:
    # Never the sender's file name on disk: it could be a path, a device name or a script.
    return str(PurePath(secrets.token_hex(2), secrets.token_hex(16)))


class InboundAttachment(models.Model):
    inbound = models.ForeignKey(InboundEmail, on_delete=models.CASCADE, related_name="attachments")
    # As the sender named it, for display and the download's Content-Disposition only.
    filename = models.CharField(max_length=255)
    declared_type = models.CharField(max_length=127, blank=True)
    # What the bytes are (sniffed), which is what the download is served as.
    content_type = models.CharField(max_length=127)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    file = models.FileField(storage=get_attachment_storage, upload_to=random_attachment_name)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.filename


def new_logging_token() -> str:
    # 160 bits in lower-case base32: survives mail systems that fold the case of local parts.
    return base64.b32encode(secrets.token_bytes(20)).decode().lower().rstrip("=")


class LoggingAddress(models.Model):
    """`log+<token>@<inbound domain>`: mail sent or copied here lands on this account."""

    account = models.ForeignKey(
        "crm.Account", on_delete=models.CASCADE, related_name="logging_addresses"
    )
    token = models.CharField(max_length=64, unique=True, default=new_logging_token)
    created_at = models.DateTimeField(auto_now_add=True)
    # A leaked address is revoked, not deleted, so mail to it is refused with a reason.
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.address

    @property
    def address(self) -> str:
        return f"log+{self.token}@{settings.TIDINGS_INBOUND_DOMAIN}"


class InboundAddressRule(models.Model):
    """Taught in triage: mail from or to this address (or anyone at this domain) goes here."""

    pattern = models.CharField(max_length=254, unique=True)
    account = models.ForeignKey("crm.Account", on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.pattern} -> {self.account_id}"

    @property
    def is_domain(self) -> bool:
        return "@" not in self.pattern


class SeenWebhookToken(models.Model):
    """A provider's one-time token (Mailgun's), kept past its validity window to refuse replays."""

    provider = models.CharField(max_length=20)
    token = models.CharField(max_length=255)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "token"], name="integrations_unique_webhook_token"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} token seen {self.seen_at:%Y-%m-%d %H:%M}"
