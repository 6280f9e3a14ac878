"""The write path of inbound email: accept (store raw), process (parse, match, post), and the
people's corrections from triage (assign, teach a rule, re-run).

Accepting commits the raw bytes and nothing else, so the answer to the sender is fast and a crash
later loses nothing; processing runs in a Celery task (`integrations.tasks`) scheduled on commit.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from crm.models import Account, Contact, User
from crm.visibility import can_see_account, get_visible_account
from feed import actions as feed_actions
from feed.models import Activity
from integrations.calendar.invites import Invite, UnreadableInvite, parse_invite
from integrations.email import content_types
from integrations.email.matching import Match, is_matchable_domain, match_email
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
# A message that took its worker down this many times is given up, not retried forever.
MAX_ATTEMPTS = 3
# Longer than the task's hard time limit (integrations/tasks.py): a run still inside its lease
# may still be working.
CLAIM_LEASE = dt.timedelta(minutes=2)
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
    """Store `raw` once and schedule its processing after commit.

    The same message (same Message-ID; same provider id; same bytes when it has no Message-ID)
    yields the row already stored, `is_duplicate` True, also when two posts race: the database's
    unique constraints decide, and the loser reads the winner's row. Raises only when storing
    itself failed (the caller answers 5xx so that the sender retries).
    """
    message_id = peek_message_id(raw)
    digest = sha256(raw)
    # Providers' ids come from their JSON: valid text for PostgreSQL (no NUL, no lone surrogate).
    provider_id = provider_id.encode("utf-8", "replace").decode().replace("\x00", "")[:255]
    try:
        with transaction.atomic():
            inbound = InboundEmail.objects.create(
                raw=raw,
                size=len(raw),
                sha256=digest,
                message_id=message_id,
                provider=provider,
                provider_id=provider_id,
            )
            transaction.on_commit(partial(schedule_processing, inbound.pk))
    except IntegrityError:
        existing = _stored_copy(message_id, provider, provider_id, digest)
        if existing is None:
            raise
        return Accepted(existing, is_duplicate=True)
    return Accepted(inbound, is_duplicate=False)


def _stored_copy(
    message_id: str, provider: str, provider_id: str, digest: str
) -> InboundEmail | None:
    condition = Q(message_id=message_id) if message_id else Q(message_id="", sha256=digest)
    if provider_id:
        condition |= Q(provider=provider, provider_id=provider_id)
    return InboundEmail.objects.filter(condition).defer("raw").order_by("pk").first()


def schedule_processing(inbound_id: int) -> None:
    """Queue the task; if the broker is down the row stays queued and the sweeper re-queues it."""
    from integrations import tasks

    try:
        tasks.process_inbound_email.delay(inbound_id)
    except Exception:
        log.warning("inbound #%s stored but not queued; the sweeper will queue it", inbound_id)


def process_inbound_email(*, inbound_id: int) -> InboundEmail | None:
    """Parse, match and post one queued message; every path ends in a final status with a reason.

    Idempotent: a message that is not `queued` (already done, or done by a concurrent run of the
    same task) is left alone, so a re-delivered task never posts twice.
    """
    # Claimed and counted in one autocommitted statement: if parsing kills the worker, the count
    # survives; a message that is not queued (done already) or is leased to a run still within
    # its time limit (a second delivery of the same task) is left alone. A run that died keeps
    # the lease until it expires; the sweeper then queues the message again.
    now = timezone.now()
    claimed = (
        InboundEmail.objects.filter(pk=inbound_id, status=Status.QUEUED)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_LEASE))
        .update(attempts=F("attempts") + 1, claimed_at=now)
    )
    if not claimed:
        return InboundEmail.objects.defer("raw").filter(pk=inbound_id).first()
    try:
        return _process_claimed(inbound_id)
    except DatabaseError:
        raise  # the database is away: the task retries (integrations/tasks.py)
    except Exception as error:
        # A bug must not leave the message queued forever or take the worker down; the raw
        # bytes stay, so it can be re-run once fixed. Never log the body.
        log.exception("inbound #%s failed", inbound_id)
        return _finish(inbound_id, Status.FAILED, f"Internal error ({type(error).__name__}).")


@transaction.atomic
def _process_claimed(inbound_id: int) -> InboundEmail | None:
    """One transaction, the row locked: parse, decide, post, record. (Round trips are the cost
    of a message in the worker, so this reads the row once, raw bytes included.)"""
    inbound = InboundEmail.objects.select_for_update().filter(pk=inbound_id).first()
    if inbound is None or inbound.status != Status.QUEUED:
        return inbound
    if inbound.attempts > MAX_ATTEMPTS:
        return _mark(inbound, Status.FAILED, f"Gave up after {MAX_ATTEMPTS} attempts.")
    try:
        parsed = parse_email(inbound.raw_bytes)
    except UnreadableEmail as error:
        return _mark(inbound, Status.FAILED, str(error))
    return _decide(inbound, parsed)


def _mark(inbound: InboundEmail, status: str, reason: str) -> InboundEmail:
    inbound.status, inbound.reason = status, reason[:300]
    inbound.processed_at = timezone.now()
    inbound.save(update_fields=["status", "reason", "processed_at"])
    return inbound


def _locked(inbound_id: int) -> InboundEmail | None:
    """The row, locked until the transaction ends, without its raw bytes."""
    return InboundEmail.objects.select_for_update().defer("raw").filter(pk=inbound_id).first()


@transaction.atomic
def _finish(inbound_id: int, status: str, reason: str, **fields: object) -> InboundEmail | None:
    inbound = _locked(inbound_id)
    if inbound is None:
        return None
    inbound.status = status
    inbound.reason = reason[:300]
    inbound.processed_at = timezone.now()
    for name, value in fields.items():
        setattr(inbound, name, value)
    inbound.save(update_fields=["status", "reason", "processed_at", *fields])
    return inbound


def _record_headers(inbound: InboundEmail, parsed: ParsedEmail) -> None:
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


def _decide(inbound: InboundEmail, parsed: ParsedEmail) -> InboundEmail:
    """Inside the caller's transaction, with `inbound` locked and queued."""
    _record_headers(inbound, parsed)
    status, reason, match = _triage(inbound, parsed)
    activity = None
    if status == Status.PROCESSED and match is not None and match.account is not None:
        activity = post_to_timeline(inbound, parsed, match.account, match)
        inbound.account, inbound.matched_by = match.account, match.matched_by
    inbound.status, inbound.reason, inbound.activity = status, reason[:300], activity
    inbound.processed_at = timezone.now()
    inbound.save(update_fields=[*PROCESSED_FIELDS, "account", "matched_by"])
    return inbound


def _triage(inbound: InboundEmail, parsed: ParsedEmail) -> tuple[str, str, Match | None]:
    """The status a message deserves before it goes anywhere near a timeline."""
    if parsed.auto_reason:
        return Status.REJECTED, parsed.auto_reason.capitalize() + ".", None
    if _is_burst(inbound):
        inbound.is_auto = True
        limit, minutes = (
            settings.TIDINGS_INBOUND_BURST_LIMIT,
            settings.TIDINGS_INBOUND_BURST_MINUTES,
        )
        return Status.REJECTED, f"Burst: over {limit} messages in {minutes} min from sender.", None
    if parsed.message_id and parsed.message_id != inbound.message_id:
        first = InboundEmail.objects.filter(message_id=parsed.message_id).exclude(pk=inbound.pk)
        original = first.values_list("pk", flat=True).first()
        if original is not None:
            return Status.DUPLICATE, f"Same Message-ID as inbound #{original}.", None
    match = match_email(parsed)
    if match.account is None:
        return Status.UNMATCHED, match.reason, None
    return Status.PROCESSED, f"Matched by {match.matched_by}.", match


def _is_burst(inbound: InboundEmail) -> bool:
    if not inbound.from_address:
        return False
    since = inbound.received_at - dt.timedelta(minutes=settings.TIDINGS_INBOUND_BURST_MINUTES)
    earlier = InboundEmail.objects.filter(
        from_address=inbound.from_address,
        received_at__gte=since,
        received_at__lte=inbound.received_at,
    ).exclude(pk=inbound.pk)
    return earlier.count() >= settings.TIDINGS_INBOUND_BURST_LIMIT


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
    details = describe(parsed) | {
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


def _store_attachments(inbound: InboundEmail, parsed: ParsedEmail) -> list[InboundAttachment]:
    stored = []
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
        attachment.save()
        stored.append(attachment)
    return stored


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
    _record_headers(inbound, parsed)
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
    transaction.on_commit(partial(schedule_processing, inbound_id))


def requeue_stale_inbound_emails(*, older_than: dt.timedelta) -> int:
    """Queue again what has waited `older_than` in `queued` (its task was lost: broker down,
    worker killed before the ack). Safe to run at any time: processing is idempotent."""
    cutoff = timezone.now() - older_than
    ids = list(
        InboundEmail.objects.filter(status=Status.QUEUED, received_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:1000]
    )
    for inbound_id in ids:
        schedule_processing(inbound_id)
    return len(ids)


def give_up_inbound_email(*, inbound_id: int, reason: str) -> InboundEmail | None:
    """Mark a message that could not be processed in time as failed (it can be re-run)."""
    with transaction.atomic():
        inbound = _locked(inbound_id)
        if inbound is None or inbound.status != Status.QUEUED:
            return inbound
    return _finish(inbound_id, Status.FAILED, reason)


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
