"""Server-rendered pages of accounts."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from crm.queries import search_accounts

ACCOUNTS_PER_PAGE = 30


@login_required
def account_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "")[:200]
    paginator = Paginator(search_accounts(request.user, q), ACCOUNTS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    return render(request, "crm/account_list.html", {"page": page, "q": q})
