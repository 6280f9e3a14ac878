"""The write path for CRM records.

Each function is one change: it checks that the actor may make it, writes in one transaction and
returns the record. Pages, the API, the admin and `seed_demo` all come through here.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import partial
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from crm import changes as record_changes
from crm.models import (
    Account,
    AccountDomain,
    AccountTeamMember,
    Contact,
    ContactEmail,
    Lead,
    Opportunity,
    Team,
    User,
)
from crm.visibility import get_visible_account
from realtime.channel import announce_access_changed

ACCOUNT_FIELDS = {"name", "owner", "team", "industry", "region", "record_type"}
OPPORTUNITY_FIELDS = {
    "name",
    "stage",
    "forecast_category",
    "probability",
    "amount",
    "close_date",
    "owner",
}
CONTACT_FIELDS = {"first_name", "last_name", "title", "phone"}
LEAD_FIELDS = {
    "first_name",
    "last_name",
    "company",
    "email",
    "phone",
    "group",
    "dead_reason",
    "owner",
}


def _access_narrowed(user_ids: list[int] | None) -> None:
    """After commit, have open sockets re-check these users' access (None: everyone's)."""
    transaction.on_commit(partial(announce_access_changed, user_ids))


def _require_admin(actor: User) -> None:
    if not actor.is_admin:
        raise PermissionDenied("Only an administrator may do this.")


def _apply(instance: Any, allowed: set[str], changes: dict[str, Any]) -> list[str]:
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError(f"These fields cannot be changed here: {', '.join(sorted(unknown))}.")
    changed = [field for field, value in changes.items() if getattr(instance, field) != value]
    for field in changed:
        setattr(instance, field, changes[field])
    return changed


def normalize_domain(domain: str) -> str:
    cleaned = domain.strip().lower().rstrip(".")
    if cleaned.startswith("www."):
        cleaned = cleaned[4:]
    if not cleaned or "." not in cleaned or " " in cleaned or "@" in cleaned:
        raise ValidationError(f"{domain!r} is not a web domain.")
    return cleaned


@transaction.atomic
def create_team(*, actor: User, name: str, region: str = "", managers: list[User] = ()) -> Team:  # type: ignore[assignment]
    _require_admin(actor)
    team = Team.objects.create(name=name, region=region)
    team.managers.set(managers)
    return team


@transaction.atomic
def create_account(
    *,
    actor: User,
    name: str,
    owner: User,
    team: Team | None = None,
    industry: str = "",
    region: str = "",
    record_type: str = "customer",
    domains: list[str] = (),  # type: ignore[assignment]
) -> Account:
    """Create an account. Reps may create accounts they own in their own team."""
    team = team or owner.team
    if team is None:
        raise ValidationError("The owner belongs to no team; choose the account's team.")
    if not actor.is_admin and (owner.pk != actor.pk or team.pk != actor.team_id):
        raise PermissionDenied("You may only create accounts that you own, in your own team.")
    account = Account.objects.create(
        name=name.strip(),
        owner=owner,
        team=team,
        industry=industry,
        region=region,
        record_type=record_type,
    )
    for domain in domains:
        add_account_domain(actor=actor, account=account, domain=domain)
    return account


@transaction.atomic
def update_account(*, actor: User, account: Account, **changes: Any) -> list[str]:
    """Change the account's own fields; returns the names of the fields that changed."""
    get_visible_account(actor, account.pk)
    if ({"owner", "team"} & set(changes)) and not (
        actor.is_admin or actor.pk == account.owner_id or actor.role == User.Role.MANAGER
    ):
        raise PermissionDenied("Only the owner, a manager or an administrator may reassign it.")
    before = record_changes.snapshot(account)
    changed = _apply(account, ACCOUNT_FIELDS, changes)
    if changed:
        account.save(update_fields=[*changed, "updated_at"])
    if {"owner", "team"} & set(changed):
        # Registered first, so published first: sockets re-check before the change entry
        # (committed together with the new owner) can reach anyone who just lost the account.
        _access_narrowed(None)
    if changed:
        record_changes.announce(actor=actor, account=account, record=account, before=before)
    return changed


@transaction.atomic
def add_account_domain(*, actor: User, account: Account, domain: str) -> AccountDomain:
    get_visible_account(actor, account.pk)
    cleaned = normalize_domain(domain)
    existing = AccountDomain.objects.filter(domain=cleaned).first()
    if existing is not None:
        if existing.account_id != account.pk:
            raise ValidationError(f"{cleaned} already belongs to another account.")
        return existing
    return AccountDomain.objects.create(account=account, domain=cleaned)


@transaction.atomic
def remove_account_domain(*, actor: User, account: Account, domain: str) -> None:
    get_visible_account(actor, account.pk)
    AccountDomain.objects.filter(account=account, domain=normalize_domain(domain)).delete()


@transaction.atomic
def grant_account_access(
    *, actor: User, account: Account, user: User, role: str = ""
) -> AccountTeamMember:
    get_visible_account(actor, account.pk)
    if not (actor.is_admin or actor.pk == account.owner_id or actor.role == User.Role.MANAGER):
        raise PermissionDenied("Only the owner, a manager or an administrator may grant access.")
    member, _ = AccountTeamMember.objects.update_or_create(
        account=account, user=user, defaults={"role": role}
    )
    return member


@transaction.atomic
def revoke_account_access(*, actor: User, account: Account, user: User) -> None:
    get_visible_account(actor, account.pk)
    if not (actor.is_admin or actor.pk == account.owner_id or actor.role == User.Role.MANAGER):
        raise PermissionDenied("Only the owner, a manager or an administrator may revoke access.")
    AccountTeamMember.objects.filter(account=account, user=user).delete()
    _access_narrowed([user.pk])


@transaction.atomic
def create_contact(
    *,
    actor: User,
    account: Account,
    first_name: str,
    last_name: str = "",
    title: str = "",
    phone: str = "",
    emails: list[str] = (),  # type: ignore[assignment]
) -> Contact:
    """Anyone who can see the account may add a contact to it."""
    get_visible_account(actor, account.pk)
    contact = Contact.objects.create(
        account=account, first_name=first_name, last_name=last_name, title=title, phone=phone
    )
    for index, address in enumerate(emails):
        add_contact_email(actor=actor, contact=contact, address=address, is_primary=index == 0)
    return contact


@transaction.atomic
def update_contact(*, actor: User, contact: Contact, **changes: Any) -> list[str]:
    get_visible_account(actor, contact.account_id)
    changed = _apply(contact, CONTACT_FIELDS, changes)
    if changed:
        contact.save(update_fields=changed)
    return changed


@transaction.atomic
def remove_contact_email(*, actor: User, contact: Contact, address: str) -> None:
    get_visible_account(actor, contact.account_id)
    ContactEmail.objects.filter(contact=contact, address=address.strip().lower()).delete()


@transaction.atomic
def add_contact_email(
    *, actor: User, contact: Contact, address: str, is_primary: bool = False
) -> ContactEmail:
    get_visible_account(actor, contact.account_id)
    normalized = address.strip().lower()
    email, _ = ContactEmail.objects.get_or_create(
        contact=contact, address=normalized, defaults={"is_primary": is_primary}
    )
    return email


@transaction.atomic
def create_opportunity(
    *,
    actor: User,
    account: Account,
    name: str,
    close_date: dt.date,
    amount: Decimal | int = 0,
    stage: str = Opportunity.Stage.PROSPECTING,
    probability: int = 10,
    forecast_category: str = Opportunity.Forecast.PIPELINE,
    owner: User | None = None,
) -> Opportunity:
    get_visible_account(actor, account.pk)
    return Opportunity.objects.create(
        account=account,
        name=name,
        close_date=close_date,
        amount=Decimal(amount),
        stage=stage,
        probability=probability,
        forecast_category=forecast_category,
        owner=owner or actor,
    )


@transaction.atomic
def update_opportunity(*, actor: User, opportunity: Opportunity, **changes: Any) -> list[str]:
    get_visible_account(actor, opportunity.account_id)
    before = record_changes.snapshot(opportunity)
    changed = _apply(opportunity, OPPORTUNITY_FIELDS, changes)
    if changed:
        opportunity.save(update_fields=[*changed, "updated_at"])
        record_changes.announce(
            actor=actor, account=opportunity.account, record=opportunity, before=before
        )
    return changed


@transaction.atomic
def create_lead(
    *,
    actor: User,
    first_name: str,
    company: str,
    last_name: str = "",
    email: str = "",
    phone: str = "",
    group: str = Lead.Group.NAMES,
    dead_reason: str = "",
    owner: User | None = None,
) -> Lead:
    if group == Lead.Group.DEAD and not dead_reason:
        raise ValidationError("A dead lead needs a reason (disqualified, unreachable, ...).")
    return Lead.objects.create(
        first_name=first_name,
        last_name=last_name,
        company=company,
        email=email.strip().lower(),
        phone=phone,
        group=group,
        dead_reason=dead_reason,
        owner=owner if owner is not None else actor,
    )


@transaction.atomic
def update_lead(*, actor: User, lead: Lead, **changes: Any) -> list[str]:
    if not (actor.is_admin or lead.owner_id in (None, actor.pk)):
        raise PermissionDenied("Only the lead's owner or an administrator may change it.")
    changed = _apply(lead, LEAD_FIELDS, changes)
    if lead.group == Lead.Group.DEAD and not lead.dead_reason:
        raise ValidationError("A dead lead needs a reason (disqualified, unreachable, ...).")
    if changed:
        lead.save(update_fields=changed)
    return changed


@transaction.atomic
def user_changed(*, actor: User, user: User, fields: list[str]) -> None:
    """Record that an administrator changed `fields` of `user` (through the admin's own form).

    A change of activity, role or team can narrow what the user may see: their open sockets
    re-check at once.
    """
    _require_admin(actor)
    if {"is_active", "role", "team", "is_superuser"} & set(fields):
        _access_narrowed([user.pk])


@transaction.atomic
def set_user_active(*, actor: User, user: User, is_active: bool) -> None:
    """Deactivate (or reactivate) a user; a deactivated user's open sockets close at once."""
    _require_admin(actor)
    if user.is_active != is_active:
        user.is_active = is_active
        user.save(update_fields=["is_active"])
        _access_narrowed([user.pk])
