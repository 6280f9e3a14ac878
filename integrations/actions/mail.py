"""Inbound email as the rest of the code base meets it: accepting (store raw, once), posting a
message to a timeline, and the people's corrections from triage (assign, teach a rule, re-run),
logging addresses and provider tokens. Batch processing is in `processing`."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from crm.models import Account, Contact, User
from crm.visibility import can_see_account, get_visible_account
from feed import actions as feed_actions
from feed.models import Activity
from integrations.actions import queueing
from integrations.calendar.invites import Invite, UnreadableInvite, parse_invite
from integrations.email import content_types
from integrations.email.matching import Match, is_matchable_domain
from integrations.email.parsing import (
    ParsedEmail,
    UnreadableEmail,
    authentication_passes,
    describe,
    parse_email,
    peek_message_id,
    sha256,
)
from integrations.models import (
    InboundAddressRule,
    InboundAttachment,
    InboundEmail,
    LoggingAddress,
    SeenWebhookToken,
)
from integrations.queries import get_visible_inbound_email

log = logging.getLogger(__name__)
Status = InboundEmail.Status
# What processing writes on a row (never `raw`: the bytes are written once, when accepted).
PROCESSED_FIELDS = [
    "status",
    "reason",
    "activity",
    "processed_at",
    "from_address",
    "subject",
    "participants",
    "is_verified",
    "is_auto",
]


@dataclass(frozen=True)
class Accepted:
    inbound: InboundEmail
    is_duplicate: bool


def accept_inbound_email(*, raw: bytes, provider: str = "raw", provider_id: str = "") -> Accepted:
    """Store `raw` once and have it processed after commit.

    The same message (same Message-ID; same provider id; same bytes when it has no Message-ID)
    yields the row already stored, `is_duplicate` True, also when two posts race: the database's
    unique constraints decide, and the loser reads the winner's row. Raises only when storing
    itself failed (the caller answers 5xx so that the sender retries).
    """
    message_id = peek_message_id(raw)
    digest = sha256(raw)
    # Providers' ids come from their JSON: valid text for PostgreSQL (no NUL, no lone surrogate).
    provider_id = provider_id.encode("utf-8", "replace").decode().replace("\x00", "")[:255]
    inbound = InboundEmail(
        raw=raw,
        size=len(raw),
        sha256=digest,
        message_id=message_id,
        provider=provider,
        provider_id=provider_id,
    )
    if _insert_once(inbound):
        transaction.on_commit(queueing.request_drain_soon)
        return Accepted(inbound, is_duplicate=False)
    existing = _stored_copy(message_id, provider, provider_id, digest)
    if existing is None:
        # The copy that conflicted is gone again (rolled back, or deleted): the sender retries.
        raise DatabaseError("The message conflicted with a copy that is no longer stored.")
    return Accepted(existing, is_duplicate=True)


def _insert_once(inbound: InboundEmail) -> bool:
    """INSERT the row unless a unique constraint already holds a copy; True if inserted.

    One statement (in autocommit, one round trip that commits): a concurrent post of the same
    message waits for the first to commit, then inserts nothing; a failed INSERT would cost a
    savepoint around it, and the ORM's create could not say "nothing" without raising.
    """
    fields = [f for f in InboundEmail._meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(inbound, True), connection) for f in fields]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(InboundEmail._meta.db_table)} "  # noqa: S608 - names are ours
        f"({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT DO NOTHING RETURNING id"
    )
    row = _execute_returning(sql, values)
    if row is None:
        return False
    inbound.pk = row[0]
    inbound._state.adding = False
    return True


def _execute_returning(sql: str, values: list[Any]) -> tuple[Any, ...] | None:
    """One statement, its first row. On PostgreSQL bound on the server: the raw message then
    travels as binary instead of being quoted into the SQL text in Python (Django's client-side
    binding), which for a 100 KB attachment cost more than the rest of the accept."""
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, values)
            return cursor.fetchone()
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return cursor.fetchone()


def _stored_copy(
    message_id: str, provider: str, provider_id: str, digest: str
) -> InboundEmail | None:
    condition = Q(message_id=message_id) if message_id else Q(message_id="", sha256=digest)
    if provider_id:
        condition |= Q(provider=provider, provider_id=provider_id)
    return InboundEmail.objects.filter(condition).defer("raw").order_by("pk").first()


def record_headers(inbound: InboundEmail, parsed: ParsedEmail) -> None:
    """What triage, burst counting and "mail from this address" read, copied onto the row."""
    sender = parsed.sender.address if parsed.sender else ""
    inbound.from_address = sender
    inbound.subject = parsed.subject
    inbound.participants = " " + " ".join(a.address for a in parsed.participants[:100]) + " "
    inbound.is_verified = authentication_passes(
        parsed.authentication_results,
        settings.TIDINGS_INBOUND_AUTHSERV_ID,
        parsed.sender.domain if parsed.sender else "",
    )
    inbound.is_auto = bool(parsed.auto_reason)


def is_special(parsed: ParsedEmail) -> bool:
    """A message that becomes more than one plain email row: an invite (a meeting) or a new
    message to the support address (an email and a request). The worker posts these one by one
    through `post_to_timeline`, and the rest in bulk."""
    return parsed.calendar is not None or _is_to_support(parsed)


def post_to_timeline(
    inbound: InboundEmail, parsed: ParsedEmail, account: Account, match: Match
) -> Activity:
    """The activity on `account` for a message: a meeting for a readable invite, else an email
    (in the thread of `match.parent`, about `match.contact`)."""
    if parsed.calendar is not None:
        try:
            invite = parse_invite(parsed.calendar)
        except UnreadableInvite:
            invite = None
        if invite is not None:
            return _record_meeting(inbound, invite, account)
    attachments = _store_attachments(inbound, parsed)
    details = email_details(inbound, parsed, attachments)
    contact = match.contact
    if contact is not None and contact.account_id != account.pk:
        contact = None
    email = feed_actions.log_email(
        account=account,
        subject=parsed.subject,
        body=parsed.new_text,
        details=details,
        occurred_at=parsed.date or inbound.received_at,
        parent=match.parent,
        contact=contact,
    )
    if match.parent is None and _is_to_support(parsed):
        # A new message to the support address is a request on the account it matched (a reply
        # in an existing thread stays a reply).
        feed_actions.raise_request_from_email(account=account, email=email)
    return email


def _is_to_support(parsed: ParsedEmail) -> bool:
    support = settings.TIDINGS_SUPPORT_ADDRESS
    return bool(support) and any(a.address == support for a in (*parsed.to, *parsed.cc))


def email_details(
    inbound: InboundEmail, parsed: ParsedEmail, attachments: list[InboundAttachment]
) -> dict[str, Any]:
    """The `details` of the email activity of a message whose attachments are stored."""
    return describe(parsed) | {
        "html": parsed.html,
        "signature": parsed.signature,
        "is_verified": inbound.is_verified,
        "inbound_email": inbound.pk,
        "attachments": [
            {
                "id": a.pk,
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "url": reverse("email-attachment", args=[a.pk]),
            }
            for a in attachments
        ],
        "attachments_left_out": [
            {"filename": p.filename, "size": len(p.content)}
            for p in parsed.attachments
            if len(p.content) > settings.TIDINGS_ATTACHMENT_MAX_BYTES
        ],
    }


def attachment_rows(inbound: InboundEmail, parsed: ParsedEmail) -> list[InboundAttachment]:
    """The attachments of a message to store, files written, rows not yet inserted."""
    rows = []
    for part in parsed.attachments:
        if len(part.content) > settings.TIDINGS_ATTACHMENT_MAX_BYTES or not part.content:
            continue
        attachment = InboundAttachment(
            inbound=inbound,
            filename=part.filename,
            declared_type=part.declared_type[:127],
            content_type=content_types.sniff(part.content),
            size=len(part.content),
            sha256=sha256(part.content),
        )
        attachment.file.save("attachment", ContentFile(part.content), save=False)
        rows.append(attachment)
    return rows


def _store_attachments(inbound: InboundEmail, parsed: ParsedEmail) -> list[InboundAttachment]:
    return InboundAttachment.objects.bulk_create(attachment_rows(inbound, parsed))


def _record_meeting(inbound: InboundEmail, invite: Invite, account: Account) -> Activity:
    addresses = [invite.organizer, *invite.attendees]
    users = list(
        User.objects.filter(is_active=True, email__in=[a for a in addresses if a]).distinct()
    )
    # A colleague who cannot see the account is listed by address only, never linked.
    visible_users = [u for u in users if can_see_account(u, account.pk)]
    user_emails = {u.email.lower() for u in visible_users}
    contacts = list(
        Contact.objects.filter(account=account, emails__address__in=addresses).distinct()
    )
    contact_emails = set(
        Contact.objects.filter(pk__in=[c.pk for c in contacts]).values_list(
            "emails__address", flat=True
        )
    )
    known = user_emails | contact_emails
    others = [a for a in dict.fromkeys(addresses) if a and a not in known]
    return feed_actions.record_invited_meeting(
        account=account,
        uid=invite.uid,
        sequence=invite.sequence,
        subject=invite.summary,
        starts_at=invite.starts_at,
        ends_at=invite.ends_at,
        body=invite.description,
        users=visible_users,
        contacts=contacts,
        emails=others,
        is_cancelled=invite.is_cancelled,
        source={"inbound_email": inbound.pk, "is_verified": inbound.is_verified},
    )


# --- triage: what people do with what the rules could not place ----------------------------


def _require_triage_access(actor: User, inbound: InboundEmail) -> None:
    get_visible_inbound_email(actor, inbound.pk)


@transaction.atomic
def assign_inbound_email(
    *, actor: User, inbound: InboundEmail, account: Account, teach: str = ""
) -> InboundEmail:
    """Put an unmatched message on `account`, optionally teaching a rule for its sender.

    `teach` is "", "address" (always match this sender's address here) or "domain" (anyone at
    the sender's domain). The actor must see both the message and the account.
    """
    _require_triage_access(actor, inbound)
    get_visible_account(actor, account.pk)
    inbound = InboundEmail.objects.select_for_update().get(pk=inbound.pk)
    if inbound.status not in (Status.UNMATCHED, Status.FAILED, Status.REJECTED):
        raise ValidationError("That message is already on a timeline.")
    try:
        parsed = parse_email(inbound.raw_bytes)
    except UnreadableEmail as error:
        raise ValidationError(f"That message cannot be read: {error}") from None
    record_headers(inbound, parsed)
    if teach:
        teach_rule(actor=actor, account=account, address=inbound.from_address, scope=teach)
    match = Match(account, "triage")
    inbound.activity = post_to_timeline(inbound, parsed, account, match)
    inbound.account, inbound.matched_by = account, "triage"
    inbound.status, inbound.reason = Status.PROCESSED, f"Assigned by {actor.username}."
    inbound.processed_at = timezone.now()
    inbound.save(update_fields=[*PROCESSED_FIELDS, "account", "matched_by"])
    return inbound


@transaction.atomic
def teach_rule(*, actor: User, account: Account, address: str, scope: str) -> InboundAddressRule:
    """Mail from or to `address` (scope "address") or its domain (scope "domain") goes to
    `account` from now on; unmatched mail it covers is re-run."""
    get_visible_account(actor, account.pk)
    address = address.strip().lower()
    if "@" not in address:
        raise ValidationError("That message has no sender address to learn from.")
    domain = address.rpartition("@")[2]
    if scope == "domain":
        if not (actor.is_admin or actor.role == User.Role.SUPPORT):
            # A domain routes a whole company's mail: only those who see every account decide.
            raise ValidationError("Only support staff can route a whole domain; teach the address.")
        if not is_matchable_domain(domain):
            raise ValidationError(f"{domain} is webmail or our own domain; teach the address.")
        pattern = domain
    elif scope == "address":
        pattern = address
    else:
        raise ValidationError("Teach either the address or the domain.")
    _refuse_taking_over(actor, pattern, scope)
    rule, _ = InboundAddressRule.objects.update_or_create(
        pattern=pattern, defaults={"account": account, "created_by": actor}
    )
    needle = f" {pattern} " if scope == "address" else f"@{pattern} "
    for inbound_id in InboundEmail.objects.filter(
        status=Status.UNMATCHED, participants__contains=needle
    ).values_list("pk", flat=True)[:500]:
        _requeue(inbound_id)
    return rule


def _refuse_taking_over(actor: User, pattern: str, scope: str) -> None:
    """Nobody re-routes mail that belongs to an account they cannot see: a rule already pointing
    there, a contact's address there, or (for a domain) one of its web domains."""
    from crm.models import AccountDomain, ContactEmail

    owners = set(
        InboundAddressRule.objects.filter(pattern=pattern).values_list("account_id", flat=True)
    )
    if scope == "address":
        owners |= set(
            ContactEmail.objects.filter(address__iexact=pattern).values_list(
                "contact__account_id", flat=True
            )
        )
    else:
        owners |= set(
            AccountDomain.objects.filter(domain__iexact=pattern).values_list(
                "account_id", flat=True
            )
        )
    if any(not can_see_account(actor, owner) for owner in owners):
        raise ValidationError("That address already belongs to another account; ask support.")


@transaction.atomic
def rerun_inbound_email(*, actor: User, inbound: InboundEmail) -> InboundEmail:
    """Process a message again from its raw bytes (after a fix, a new contact or a new rule).

    A message already on a timeline is not re-run: that would post it twice.
    """
    _require_triage_access(actor, inbound)
    if inbound.status in (Status.PROCESSED, Status.DUPLICATE):
        raise ValidationError("That message is already on a timeline.")
    _requeue(inbound.pk)
    inbound.refresh_from_db(fields=["status", "reason", "attempts"])
    return inbound


def _requeue(inbound_id: int) -> None:
    InboundEmail.objects.filter(pk=inbound_id).exclude(
        status__in=[Status.PROCESSED, Status.DUPLICATE]
    ).update(status=Status.QUEUED, reason="", attempts=0, processed_at=None, claimed_at=None)
    transaction.on_commit(queueing.request_drain)


def requeue_stale_inbound_emails(*, older_than: dt.timedelta) -> int:
    """Run a drain when a message has waited `older_than` in `queued` (its drain was lost: broker
    down, worker killed before the ack); answers how many wait. Safe at any time: a drain takes
    only what no other drain holds."""
    cutoff = timezone.now() - older_than
    waiting = InboundEmail.objects.filter(status=Status.QUEUED, received_at__lt=cutoff).count()
    if waiting:
        queueing.send_drain()
    return waiting


def remember_webhook_token(*, provider: str, token: str) -> bool:
    """Record a provider's single-use token; False when it was seen already. The unique
    constraint decides between two concurrent replays (the loser's savepoint rolls back, and the
    caller refuses the post, so its whole transaction — its message included — rolls back)."""
    try:
        with transaction.atomic():
            SeenWebhookToken.objects.create(provider=provider, token=token[:255])
    except IntegrityError:
        return False
    return True


def prune_webhook_tokens(*, older_than: dt.timedelta) -> int:
    """Forget provider tokens older than any post we would still accept."""
    cutoff = timezone.now() - older_than
    deleted, _ = SeenWebhookToken.objects.filter(seen_at__lt=cutoff).delete()
    return deleted


# --- logging addresses ------------------------------------------------------------------------


@transaction.atomic
def create_logging_address(*, actor: User, account: Account) -> LoggingAddress:
    """A new log+<token>@ address for `account` (anyone who can see the account may ask)."""
    get_visible_account(actor, account.pk)
    return LoggingAddress.objects.create(account=account)


@transaction.atomic
def renew_logging_address(*, actor: User, account: Account) -> LoggingAddress:
    """A fresh logging address for `account`; the ones before it stop taking mail."""
    get_visible_account(actor, account.pk)
    LoggingAddress.objects.filter(account=account, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    return LoggingAddress.objects.create(account=account)


@transaction.atomic
def revoke_logging_address(*, actor: User, address: LoggingAddress) -> None:
    get_visible_account(actor, address.account_id)
    LoggingAddress.objects.filter(pk=address.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


@transaction.atomic
def save_logging_address(*, actor: User, address: LoggingAddress) -> LoggingAddress:
    """The admin's door: a new address, or a revocation (the only change an address takes)."""
    if address.pk is None:
        return create_logging_address(actor=actor, account=address.account)
    if address.revoked_at is not None:
        revoke_logging_address(actor=actor, address=address)
    return address
