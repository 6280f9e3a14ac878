"""Server-rendered pages of accounts."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from crm.queries import account_summary, search_accounts
from feed.models import Activity
from feed.queries import account_timeline
from feed.streams import account_stream_cursor

ACCOUNTS_PER_PAGE = 30


@login_required
def account_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "")[:200]
    paginator = Paginator(search_accounts(request.user, q), ACCOUNTS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    return render(request, "crm/account_list.html", {"page": page, "q": q})


@login_required
def account_detail(request: HttpRequest, account_id: int) -> HttpResponse:
    account = account_summary(request.user, account_id)
    kind = request.GET.get("kind") or None
    if kind not in (None, *Activity.Kind.values):
        kind = None
    # The cursor is read before the timeline: an event committed in between shows up both in the
    # page and over the socket, and the page drops the copy, rather than being missed.
    cursor = account_stream_cursor(account.pk)
    try:
        timeline = account_timeline(
            request.user, account, before=request.GET.get("before"), kind=kind
        )
    except ValidationError:
        timeline = account_timeline(request.user, account, kind=kind)
    context = {
        "account": account,
        "timeline": timeline,
        "cursor": cursor,
        "kind": kind,
        "kinds": Activity.Kind.choices,
        "is_first_page": not request.GET.get("before"),
    }
    return render(request, "crm/account_detail.html", context)
