"""Reads of CRM records, always through the visibility policy."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from crm.models import Account, Contact, Opportunity
from crm.visibility import AccountNotFound, get_visible_account, visible_accounts


def search_accounts(user: Any, q: str = "") -> QuerySet[Account]:
    """Visible accounts whose name, domain or industry contains `q`, by name."""
    accounts = visible_accounts(user).select_related("owner", "team").prefetch_related("domains")
    q = q.strip()
    if q:
        accounts = accounts.filter(
            Q(name__icontains=q) | Q(domains__domain__icontains=q) | Q(industry__icontains=q)
        ).distinct()
    return accounts.order_by("name", "id")


def account_summary(user: Any, account_id: int | str) -> Account:
    """The account with contacts (and their addresses) and opportunities prefetched."""
    account = get_visible_account(user, account_id)
    prefetched = (
        Account.objects.filter(pk=account.pk)
        .select_related("owner", "team")
        .prefetch_related(
            "domains",
            Prefetch("contacts", queryset=Contact.objects.prefetch_related("emails")),
            Prefetch("opportunities", queryset=Opportunity.objects.select_related("owner")),
        )
        .first()
    )
    if prefetched is None:  # deleted between the two reads
        raise AccountNotFound()
    return prefetched
