"""Server-rendered pages of the feed."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from crm.visibility import get_visible_account
from feed.actions import post_activity
from feed.mentions import mention_warnings
from feed.queries import home_feed


@login_required
def home(request: HttpRequest) -> HttpResponse:
    try:
        page = home_feed(request.user, before=request.GET.get("before"))
    except ValidationError:
        page = home_feed(request.user)
    return render(request, "feed/home.html", {"timeline": page})


@login_required
@require_POST
def post_to_account(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_visible_account(request.user, account_id)
    body = request.POST.get("body", "")
    try:
        post_activity(author=request.user, account=account, body=body)  # type: ignore[arg-type]
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("account-detail", account_id=account.pk)
    for warning in mention_warnings(body, account):
        messages.warning(request, warning["detail"])
    return redirect("account-detail", account_id=account.pk)
