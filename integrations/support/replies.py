"""Replies to the customer of a request raised by email (a message to the support address).

`reply_to_customer` records the reply in the request's thread as an outbound `email` activity, with
the Message-ID it will carry, and queues its delivery after commit; `deliver_customer_reply` (the
Celery task's action) sends it through Django's mail backend once. The mail carries only the
reply and the customer's own message it answers: internal notes are comments in the same thread
and are never read here, so no customer-facing mail can quote one.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from functools import partial

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from crm.models import User
from feed import actions as feed_actions
from feed.actions.changes import lock_visible_activity
from feed.models import Activity
from integrations.email.message_ids import message_id_for_activity
from integrations.queries import customer_conversation

log = logging.getLogger(__name__)


def may_reply_to_customers(user: User, request: Activity) -> bool:
    """Whoever works requests, and the request's assignee, speak to the customer."""
    return feed_actions.may_work_requests(user) or request.assignee_id == user.pk


def _subject(subject: str) -> str:
    subject = " ".join(subject.split()) or "Your request"
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"


@transaction.atomic
def reply_to_customer(*, actor: User, request: Activity, body: str) -> Activity:
    """Email `body` to the customer of `request` and record it in the request's thread.

    Raises `AccountNotFound` when the actor cannot see the account, `PermissionDenied` when they
    do not work requests (nor have this one), and ValidationError when the request did not come
    by email (there is nobody outside to answer) or the text is empty.
    """
    current = lock_visible_activity(actor, request)
    if current.kind != Activity.Kind.REQUEST:
        raise ValidationError("Only a request raised by email has a customer to reply to.")
    if not may_reply_to_customers(actor, current):
        raise PermissionDenied("Only support staff, managers or the assignee reply to customers.")
    conversation = customer_conversation(current)
    if conversation is None:
        raise ValidationError(
            "This request was raised in Tidings, not by email: there is no customer to email. "
            "Reply in the thread instead."
        )
    text = feed_actions.clean_text(body)
    contact = conversation.answered.contact
    # Kept without angle brackets, as inbound Message-IDs are (integrations.email.parsing).
    message_id = message_id_for_activity(current.pk, nonce=secrets.token_hex(8)).strip("<>")
    answered_id = str(conversation.answered.details.get("message_id") or "")
    reply = feed_actions.log_activity(
        actor=actor,
        account=current.account,
        kind=Activity.Kind.EMAIL,
        subject=_subject(conversation.answered.subject or current.subject),
        body=text,
        parent=current,
        # A request moved to its right account leaves its original email behind, and that
        # email's contact with it: name the contact only where it belongs.
        contact=contact if contact and contact.account_id == current.account_id else None,
        details={
            "direction": "outbound",
            "from": settings.TIDINGS_SUPPORT_ADDRESS,
            "from_name": actor.display_name,
            "to": [conversation.customer],
            "cc": [],
            "message_id": message_id,
            "in_reply_to": [answered_id] if answered_id else [],
            "references": conversation.references,
            "answered": conversation.answered.pk,
            "sent_at": None,
        },
    )
    transaction.on_commit(partial(schedule_delivery, reply.pk))
    return reply


def schedule_delivery(reply_id: int) -> None:
    """Queue the send; with the broker down the reply stays unsent and the sweep sends it."""
    from integrations import tasks

    try:
        tasks.deliver_customer_reply.delay(reply_id)
    except Exception:
        log.warning(
            "customer reply #%s recorded but not queued; the sweep will send it",
            reply_id,
            exc_info=True,
        )


def customer_reply_message(reply: Activity, answered: Activity | None) -> EmailMultiAlternatives:
    """The mail of `reply`: from the support address, threaded onto the customer's message,
    plain text and HTML. Only the reply and the customer's own message are in it."""
    details = reply.details
    name = " ".join(str(details.get("from_name") or "").split())
    context = {"reply": reply, "answered": answered, "name": name}
    headers = {"Message-ID": f"<{details['message_id']}>"}
    if details.get("in_reply_to"):
        headers["In-Reply-To"] = f"<{details['in_reply_to'][0]}>"
    if details.get("references"):
        headers["References"] = " ".join(f"<{i}>" for i in details["references"])
    support = settings.TIDINGS_SUPPORT_ADDRESS
    message = EmailMultiAlternatives(
        subject=reply.subject,
        body=render_to_string("integrations/email/customer_reply.txt", context),
        from_email=f'"{name} via Support" <{support}>' if name else support,
        to=list(details.get("to") or []),
        reply_to=[support],
        headers=headers,
    )
    html = render_to_string("integrations/email/customer_reply.html", context)
    message.attach_alternative(html, "text/html")
    return message


@transaction.atomic
def deliver_customer_reply(*, reply_id: int) -> bool:
    """Send one recorded reply, once: answers whether it went now.

    The row is locked while sending and marked sent in the same transaction, so two workers (or
    a retried task) never both send it; a crash after the send and before the commit sends it
    again (at least once, never silently dropped).
    """
    reply = (
        Activity.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(pk=reply_id, kind=Activity.Kind.EMAIL, details__direction="outbound")
        .first()
    )
    if reply is None or reply.deleted_at is not None or reply.details.get("sent_at"):
        return False
    answered = Activity.objects.filter(pk=reply.details.get("answered")).first()
    customer_reply_message(reply, answered).send()
    reply.details = {**reply.details, "sent_at": timezone.now().isoformat()}
    reply.save(update_fields=["details"])
    return True


def deliver_pending_customer_replies(*, older_than: float = 60.0) -> int:
    """Send replies whose task never ran (broker down, lost message); answers how many went."""
    cutoff = timezone.now() - dt.timedelta(seconds=older_than)
    pending = Activity.objects.filter(
        kind=Activity.Kind.EMAIL,
        details__direction="outbound",
        details__sent_at=None,
        deleted_at__isnull=True,
        created_at__lt=cutoff,
    ).values_list("pk", flat=True)
    sent = 0
    for reply_id in list(pending[:500]):
        try:
            sent += deliver_customer_reply(reply_id=reply_id)
        except Exception:
            log.exception("customer reply #%s not sent; the next sweep tries again", reply_id)
    return sent
