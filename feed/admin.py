from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from feed.models import Activity


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin[Activity]):
    """Read-only: activities are written by the feed's actions, with their events."""

    list_display = ("__str__", "kind", "account", "author", "occurred_at", "deleted_at")
    list_filter = ("kind",)
    search_fields = ("body", "subject", "account__name")
    list_select_related = ("account", "author")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
