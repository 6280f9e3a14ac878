"""Reads of CRM records, always through the visibility policy."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from crm.models import Account, Contact, Lead, Opportunity
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


def get_visible_opportunity(user: Any, opportunity_id: int) -> Opportunity:
    """The opportunity if `user` may see its account; raises AccountNotFound otherwise."""
    opportunity = (
        Opportunity.objects.select_related("owner", "account")
        .filter(pk=opportunity_id, account__in=visible_accounts(user))
        .first()
    )
    if opportunity is None:
        raise AccountNotFound()
    return opportunity


def get_convertible_lead(user: Any, lead_id: int) -> Lead:
    """A lead `user` may convert (their own, an unowned one, or any for an administrator)."""
    leads = Lead.objects.all()
    if not getattr(user, "is_admin", False):
        leads = leads.filter(Q(owner_id=user.pk) | Q(owner__isnull=True))
    lead = leads.filter(pk=lead_id).first()
    if lead is None:
        raise AccountNotFound()
    return lead


def merged_survivor_id(account_id: int) -> int | None:
    """The account a merged-away account now lives on, or None when it was not merged."""
    return (
        Account.objects.filter(pk=account_id, merged_into__isnull=False)
        .values_list("merged_into_id", flat=True)
        .first()
    )
