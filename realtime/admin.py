from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from realtime.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin[Event]):
    """The outbox, for looking only."""

    list_display = ("id", "stream", "type", "prev_id", "created_at")
    list_filter = ("type",)
    search_fields = ("stream",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
