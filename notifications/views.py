"""Pages of notifications: the inbox, the settings, and the unsubscribe page of emails."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from crm.models import User
from notifications import actions
from notifications.actions.preferences import DIGEST, read_unsubscribe_token
from notifications.models import Delivery, Kind, Notification, Schedule
from notifications.queries import inbox as inbox_page
from notifications.queries import preferences_of, schedule_of
from notifications.serializers import activity_url


def _me(request: HttpRequest) -> User:
    return cast(User, request.user)


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    before = request.GET.get("before")
    unread_only = request.GET.get("unread") == "1"
    try:
        page = inbox_page(request.user, before=before, unread_only=unread_only)
    except ValidationError:
        page = inbox_page(request.user, unread_only=unread_only)
    context = {"page": page, "unread_only": unread_only}
    return render(request, "notifications/inbox.html", context)


@login_required
@require_POST
def mark_all_read(request: HttpRequest) -> HttpResponse:
    marked = actions.mark_read(user=_me(request))
    messages.success(request, f"Marked {marked} notification{'s' if marked != 1 else ''} read.")
    return redirect("notification-inbox")


@login_required
@require_POST
def open_notification(request: HttpRequest, notification_id: int) -> HttpResponse:
    """Mark it read and go to what it is about. Someone else's is a 404 like a missing one."""
    item = Notification.objects.filter(pk=notification_id, recipient=_me(request)).first()
    if item is None:
        return render(request, "404.html", status=404)
    actions.mark_read(user=_me(request), ids=[item.pk])
    return HttpResponseRedirect(activity_url(item.account_id, item.activity_id))


DELIVERY_CHOICES = Delivery.choices


@login_required
def notification_settings(request: HttpRequest) -> HttpResponse:
    user = _me(request)
    if request.method == "POST":
        kinds = {kind: request.POST.get(f"kind-{kind}", "") for kind in Kind.values}
        schedule: dict[str, object] = {
            "timezone": request.POST.get("timezone", "").strip(),
            "digest": request.POST.get("digest", ""),
        }
        for name in ("digest_hour", "reminder_minutes"):
            raw = request.POST.get(name, "").strip()
            schedule[name] = int(raw) if raw.isdecimal() else raw
        try:
            actions.update_preferences(
                user=user, kinds={k: v for k, v in kinds.items() if v}, schedule=schedule
            )
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                messages.error(
                    request, f"{field.replace('_', ' ').capitalize()}: {' '.join(problems)}"
                )
        else:
            messages.success(request, "Your notification settings are saved.")
            return redirect("notification-settings")
    current = preferences_of(user)
    rows = [
        {"kind": kind, "label": label, "delivery": current[kind]} for kind, label in Kind.choices
    ]
    context = {
        "rows": rows,
        "deliveries": DELIVERY_CHOICES,
        "schedule": schedule_of(user),
        "digests": Schedule.Digest.choices,
        "hours": range(24),
    }
    return render(request, "notifications/settings.html", context)


@csrf_exempt  # authenticated by its signed token; mail clients POST it (RFC 8058 one-click)
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks (link scanners must not unsubscribe anyone); POST does it."""
    try:
        user, kind = read_unsubscribe_token(token)
    except ValidationError:
        return render(request, "notifications/unsubscribe.html", {"is_valid": False}, status=404)
    label = "the digest" if kind == DIGEST else f"emails for “{Kind(kind).label.lower()}”"
    context = {"is_valid": True, "label": label, "who": user, "is_done": False}
    if request.method == "POST":
        actions.unsubscribe(token=token)
        context["is_done"] = True
    return render(request, "notifications/unsubscribe.html", context)
