"""Reads of inbound email: one function per question, access checked by name."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from crm.models import Account, Contact, ContactEmail, User
from crm.visibility import live_accounts, visible_accounts
from feed.models import Activity
from integrations.models import InboundAttachment, InboundEmail, LoggingAddress, SeenWebhookToken


class InboundEmailNotFound(Http404):
    """Does not exist, or the user may not see it; never told apart."""

    def __init__(self) -> None:
        super().__init__("Not found.")


def is_webhook_token_seen(provider: str, token: str) -> bool:
    return SeenWebhookToken.objects.filter(provider=provider, token=token[:255]).exists()


def sees_all_inbound(user: Any) -> bool:
    """Who works the whole triage queue: administrators and support (the roles that see every
    account under crm.visibility; `is_staff` alone grants the admin site, not the mail)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return bool(user.is_admin or user.role == User.Role.SUPPORT)


def visible_inbound_emails(user: Any) -> QuerySet[InboundEmail]:
    """Messages `user` may see: those on accounts they can see, and unmatched ones that involve
    their own address (a rep's copied mail waiting in triage). Staff and support see all."""
    emails = InboundEmail.objects.defer("raw")
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return emails.none()
    if sees_all_inbound(user):
        return emails
    # Where its email is now (an activity moved or merged since), else where it was matched.
    visible = visible_accounts(user)
    condition = Q(activity__account__in=visible) | Q(activity__isnull=True, account__in=visible)
    if user.email:
        condition |= Q(account__isnull=True, participants__contains=f" {user.email.lower()} ")
    return emails.filter(condition)


def get_visible_inbound_email(user: Any, inbound_id: int | str) -> InboundEmail:
    """The message if `user` may see it; raises `InboundEmailNotFound` otherwise."""
    try:
        pk = int(inbound_id)
    except (TypeError, ValueError):
        raise InboundEmailNotFound() from None
    inbound = visible_inbound_emails(user).filter(pk=pk).first()
    if inbound is None:
        raise InboundEmailNotFound()
    return inbound


def triage_queue(user: Any, *, limit: int = 100) -> list[InboundEmail]:
    """Unmatched messages `user` may work, newest first, each with `suggested_contact`: a contact
    that now has the sender's address (added since the message arrived), offered for re-matching.
    """
    queue = list(
        visible_inbound_emails(user)
        .filter(status=InboundEmail.Status.UNMATCHED)
        .order_by("-received_at", "-id")[:limit]
    )
    senders = {m.from_address for m in queue if m.from_address}
    contacts: dict[str, Contact] = {}
    rows = ContactEmail.objects.filter(
        address__in=senders, contact__account__in=live_accounts()
    ).select_related("contact__account")
    for row in rows:
        contacts.setdefault(row.address, row.contact)
    visible = set(
        visible_accounts(user)
        .filter(pk__in=[c.account_id for c in contacts.values()])
        .values_list("pk", flat=True)
    )
    for message in queue:
        contact = contacts.get(message.from_address)
        is_offered = contact is not None and contact.account_id in visible
        message.suggested_contact = contact if is_offered else None  # type: ignore[attr-defined]
    return queue


def noise_kept_out(user: Any, *, days: int = 7) -> int:
    """How many auto-replies, bounces and bursts `user` could see were kept out of the feed."""
    since = timezone.now() - dt.timedelta(days=days)
    rejected = visible_inbound_emails(user).filter(
        status=InboundEmail.Status.REJECTED, received_at__gte=since
    )
    return rejected.count()


def rematchable_ids(user: Any) -> list[int]:
    """Unmatched messages whose sender has since become a contact on a visible account."""
    return [m.pk for m in triage_queue(user, limit=500) if m.suggested_contact is not None]  # type: ignore[attr-defined]


def get_visible_attachment(user: Any, attachment_id: int) -> InboundAttachment:
    """An attachment of a message on an account `user` can see; raises Http404 otherwise."""
    attachment = (
        InboundAttachment.objects.select_related("inbound")
        .filter(
            pk=attachment_id,
            # Where the email is now (moved, merged), and not deleted: its readers, no others.
            inbound__activity__account__in=visible_accounts(user),
            inbound__activity__deleted_at__isnull=True,
        )
        .first()
    )
    if attachment is None:
        raise Http404("Not found.")
    return attachment


def logging_address_of(account: Account) -> LoggingAddress | None:
    """The account's current logging address (the newest not revoked), if it has one."""
    addresses = LoggingAddress.objects.filter(account=account, revoked_at__isnull=True)
    return addresses.order_by("-created_at", "-id").first()


# How many earlier Message-IDs a reply to a customer lists in References: enough for any mail
# client to thread it, short enough for providers that cap the header.
REFERENCES_KEPT = 20


@dataclass(frozen=True)
class Conversation:
    """The customer side of a request's thread: who to answer, and the message answered."""

    customer: str
    answered: Activity
    references: list[str]


def customer_conversation(request: Activity) -> Conversation | None:
    """The conversation of a request raised by email, or None when it was raised in Tidings.

    The answered message is the customer's newest email in the thread (else the one that raised
    the request); References lists every email of the conversation, oldest first.
    """
    email_id = request.details.get("email") if request.kind == Activity.Kind.REQUEST else None
    if not email_id:
        return None
    original = Activity.objects.filter(pk=email_id, kind=Activity.Kind.EMAIL).first()
    if original is None or not original.details.get("from"):
        return None
    # In the order they reached Tidings: Date headers are the senders' clocks, to the second.
    in_thread = list(
        Activity.objects.filter(
            parent_id=request.pk, kind=Activity.Kind.EMAIL, deleted_at__isnull=True
        ).order_by("id")
    )
    emails = [original, *in_thread]
    # The customer is who raised the request: a colleague of theirs copied in, or someone the
    # mail was forwarded to, may write into the thread, but the reply (and what it quotes) goes
    # to the person the agent's page names.
    customer = str(original.details["from"]).lower()
    answered = next(
        (
            e
            for e in reversed(emails)
            if e.details.get("direction") != "outbound"
            and str(e.details.get("from") or "").lower() == customer
        ),
        original,
    )
    ids = [str(e.details.get("message_id") or "") for e in emails]
    references = list(dict.fromkeys(i for i in ids if i))[-REFERENCES_KEPT:]
    return Conversation(str(original.details["from"]), answered, references)
