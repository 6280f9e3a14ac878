"""History that survives: tracked field changes, lead conversion, account merges, and moving a
misrouted activity to the right account."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import partial

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm import actions as crm_actions
from crm.changes import RecordChanged
from crm.models import Account, AccountDomain, AccountTeamMember, Lead, User
from crm.visibility import AccountNotFound, get_visible_account
from feed import events
from feed.actions.activities import log_activity
from feed.actions.touches import refresh_touches
from feed.models import Activity, AuditEntry, Follow
from realtime.channel import announce_access_changed

# Changes by one person to one record within this window fold into one entry.
FOLD_WINDOW = dt.timedelta(minutes=5)


@transaction.atomic
def record_field_changes(change: RecordChanged) -> Activity | None:
    """A `change` activity for tracked field changes, folded into the actor's recent entry for
    the same record when there is one (old values kept from the first change)."""
    since = timezone.now() - FOLD_WINDOW
    recent = (
        Activity.objects.select_for_update()
        .filter(
            account=change.account,
            kind=Activity.Kind.CHANGE,
            author=change.actor,
            deleted_at__isnull=True,
            created_at__gte=since,
            details__record=change.record_key,
        )
        .order_by("-id")
        .first()
    )
    fields = dict(recent.details.get("fields", {})) if recent is not None else {}
    for item in change.changes:
        old = fields.get(item.field, {}).get("old", item.old)
        if old == item.new:
            fields.pop(item.field, None)  # changed back within the window: nothing to tell
        else:
            fields[item.field] = {"label": item.label, "old": old, "new": item.new}
    name = str(change.record)
    subject = f"{name}: " + ", ".join(f["label"].lower() for f in fields.values()) + " changed"
    details = {"record": change.record_key, "record_name": name, "fields": fields}
    if recent is not None:
        recent.details, recent.subject = details, subject if fields else f"{name}: no net change"
        recent.save(update_fields=["details", "subject"])
        events.activity_updated(recent)
        return recent
    if not fields:
        return None
    opportunity = change.record if change.record_key.startswith("opportunity:") else None
    activity = log_activity(
        actor=change.actor,
        account=change.account,
        kind=Activity.Kind.CHANGE,
        subject=subject,
        details=details,
    )
    if opportunity is not None:
        Activity.objects.filter(pk=activity.pk).update(opportunity=opportunity)
    return activity


@transaction.atomic
def convert_lead(
    *,
    actor: User,
    lead: Lead,
    opportunity_name: str = "",
    amount: Decimal | int = 0,
    close_date: dt.date | None = None,
) -> Account:
    """Account + Contact + Opportunity from a lead in one step; the lead keeps a pointer to them
    and the new account's timeline starts with where it came from."""
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    if lead.converted_account_id is not None:
        raise ValidationError("This lead was converted already.")
    if not (actor.is_admin or lead.owner_id in (None, actor.pk)):
        raise PermissionDenied("Only the lead's owner or an administrator may convert it.")
    domains = [lead.email.split("@", 1)[1]] if "@" in lead.email else []
    domains = [d for d in domains if not AccountDomain.objects.filter(domain=d).exists()]
    account = crm_actions.create_account(
        actor=actor, name=lead.company, owner=actor, domains=domains
    )
    contact = crm_actions.create_contact(
        actor=actor,
        account=account,
        first_name=lead.first_name,
        last_name=lead.last_name,
        phone=lead.phone,
        emails=[lead.email] if lead.email else [],
    )
    crm_actions.create_opportunity(
        actor=actor,
        account=account,
        name=opportunity_name or f"{lead.company} - first deal",
        close_date=close_date or (timezone.localdate() + dt.timedelta(days=90)),
        amount=amount,
    )
    was_dead = lead.is_dead
    lead.converted_account = account
    lead.save(update_fields=["converted_account"])
    history = f"Converted from the lead {lead.first_name} {lead.last_name} ({lead.company})"
    history += f", in the {lead.get_group_display().split(' ')[0].lower()} group"
    history += f", created {lead.created_at:%d %b %Y}." + (
        " It had been marked dead." if was_dead else ""
    )
    log_activity(
        actor=actor,
        account=account,
        kind=Activity.Kind.SYSTEM,
        subject="Lead converted",
        body=history,
        details={"lead": lead.pk, "contact": contact.pk},
    )
    return account


@transaction.atomic
def merge_accounts(*, actor: User, survivor: Account, loser: Account) -> Account:
    """Move everything of `loser` onto `survivor`: contacts, opportunities, activities, follows,
    account-team grants, domains. The loser is kept, pointing at the survivor (links to it
    redirect), and both timelines say what happened."""
    if not (actor.is_admin or actor.role == User.Role.MANAGER):
        raise PermissionDenied("Only a manager or an administrator may merge accounts.")
    survivor = get_visible_account(actor, survivor.pk)
    loser = get_visible_account(actor, loser.pk)
    if survivor.pk == loser.pk:
        raise ValidationError("An account cannot be merged into itself.")
    moved = {
        "contacts": loser.contacts.update(account=survivor),
        "opportunities": loser.opportunities.update(account=survivor),
        "activities": Activity.objects.filter(account=loser).update(account=survivor),
    }
    refresh_touches([loser.pk, survivor.pk])
    for follow in Follow.objects.filter(account=loser):
        # The follow moves with its choices; one who already followed the survivor keeps the
        # survivor's (they chose them for the account that stays).
        Follow.objects.get_or_create(
            user_id=follow.user_id,
            account=survivor,
            defaults={"kinds": follow.kinds, "delivery": follow.delivery},
        )
    Follow.objects.filter(account=loser).delete()
    for grant in AccountTeamMember.objects.filter(account=loser):
        AccountTeamMember.objects.get_or_create(
            user_id=grant.user_id, account=survivor, defaults={"role": grant.role}
        )
    AccountTeamMember.objects.filter(account=loser).delete()
    AccountDomain.objects.filter(account=loser).update(account=survivor)
    loser.merged_into = survivor
    loser.save(update_fields=["merged_into", "updated_at"])
    # The merged-away account is hidden from everyone now: sockets on it re-check at once.
    transaction.on_commit(partial(announce_access_changed, None))
    summary = ", ".join(f"{n} {what}" for what, n in moved.items())
    log_activity(
        actor=actor,
        account=survivor,
        kind=Activity.Kind.SYSTEM,
        subject="Accounts merged",
        body=f"{loser.name} was merged into this account by {actor.display_name}: {summary} moved.",
        details={"merged": loser.pk, "moved": moved},
    )
    events.account_merged(loser_id=loser.pk, survivor_id=survivor.pk)
    return survivor


@transaction.atomic
def move_activity(*, actor: User, activity: Activity, to_account: Account) -> Activity:
    """Move a misrouted activity (with its whole thread) to the right account, audited.

    Its author, either account's owner, a manager or an administrator may; the actor must see
    both accounts. Who can see it changes with the account: the old account's subscribers are told
    it left, the new one's that it arrived.
    """
    from feed.actions.threads import thread_root

    root = thread_root(activity)
    source = get_visible_account(actor, root.account_id)
    target = get_visible_account(actor, to_account.pk)
    if source.pk == target.pk:
        raise ValidationError("It is on that account already.")
    allowed = actor.is_admin or actor.role == User.Role.MANAGER
    allowed = allowed or actor.pk in (root.author_id, source.owner_id, target.owner_id)
    if not allowed:
        raise PermissionDenied(
            "Only its author, an owner, a manager or an administrator may move it."
        )
    if root.deleted_at is not None:
        raise AccountNotFound()
    # Who may see the thread changes: every socket re-checks its subscriptions before the events
    # below reach it (registered first, so published first), and a follower of the thread who
    # cannot see the new account stops hearing of it instead of receiving it there.
    transaction.on_commit(partial(announce_access_changed, None))
    thread = Activity.objects.filter(Q(pk=root.pk) | Q(parent=root))
    for item in thread.filter(deleted_at__isnull=True):
        events.activity_deleted(item)
    thread.update(account=target, contact=None, opportunity=None)
    refresh_touches([source.pk, target.pk])
    AuditEntry.objects.create(
        activity=root,
        actor=actor,
        action="moved",
        at=timezone.now(),
        detail={"from": source.pk, "from_name": source.name, "to": target.pk},
    )
    for item in Activity.objects.filter(Q(pk=root.pk) | Q(parent=root), deleted_at__isnull=True):
        events.activity_created(item)
    what = root.subject or root.body[:60]
    log_activity(
        actor=actor,
        account=target,
        kind=Activity.Kind.SYSTEM,
        subject="Item moved here",
        body=f"{actor.display_name} moved “{what}” here from {source.name}.",
        details={"moved": root.pk, "from": source.pk},
    )
    return Activity.objects.get(pk=root.pk)
