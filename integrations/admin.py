"""The Django admin for inbound email: read-only rows, and a re-run action through the actions."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from integrations import actions
from integrations.models import (
    InboundAddressRule,
    InboundAttachment,
    InboundEmail,
    LoggingAddress,
)


@admin.register(InboundEmail)
class InboundEmailAdmin(admin.ModelAdmin[InboundEmail]):
    list_display = ("id", "received_at", "status", "from_address", "subject", "account", "reason")
    list_filter = ("status", "provider", "is_auto", "is_verified")
    search_fields = ("from_address", "subject", "message_id")
    # The raw bytes are evidence: shown nowhere, changed never. Processing writes the rest.
    exclude = ("raw",)
    readonly_fields = [f.name for f in InboundEmail._meta.fields if f.name != "raw"]
    actions = ["rerun"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Re-run the selected messages")
    def rerun(self, request: HttpRequest, queryset: QuerySet[InboundEmail]) -> None:
        done, refused = 0, 0
        for inbound in queryset.defer("raw"):
            try:
                actions.rerun_inbound_email(actor=request.user, inbound=inbound)  # type: ignore[arg-type]
            except ValidationError:
                refused += 1
            else:
                done += 1
        self.message_user(request, f"{done} queued again.", messages.SUCCESS)
        if refused:
            self.message_user(
                request, f"{refused} already on a timeline, left alone.", messages.WARNING
            )


@admin.register(InboundAttachment)
class InboundAttachmentAdmin(admin.ModelAdmin[InboundAttachment]):
    list_display = ("id", "filename", "content_type", "size", "inbound")
    readonly_fields = [f.name for f in InboundAttachment._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(LoggingAddress)
class LoggingAddressAdmin(admin.ModelAdmin[LoggingAddress]):
    list_display = ("address", "account", "created_at", "revoked_at")
    readonly_fields = ("token", "created_at")
    raw_id_fields = ("account",)

    def address(self, obj: LoggingAddress) -> str:
        return obj.address

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        actions.save_logging_address(actor=request.user, address=obj)  # type: ignore[arg-type]


@admin.register(InboundAddressRule)
class InboundAddressRuleAdmin(admin.ModelAdmin[InboundAddressRule]):
    list_display = ("pattern", "account", "created_by", "created_at")
    readonly_fields = ("created_by", "created_at")
    raw_id_fields = ("account",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Rules are taught from the triage page, where the sender is at hand.
        return False
