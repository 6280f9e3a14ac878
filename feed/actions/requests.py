"""Support requests: raising one, and working it through to resolved.

A request carries a queue, a priority, a due time that follows from the priority
(`settings.TIDINGS_REQUEST_DUE`), a status and, once someone has it, an assignee. Every change of
who has it, where it stands or how urgent it is leaves an `AuditEntry`, which is the request's
history on its page.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from crm.models import Account, User
from feed import events, happenings
from feed.actions.activities import clean_text, log_activity, require_visible_to
from feed.actions.changes import lock_visible_activity
from feed.models import Activity, AuditEntry, RequestQueue, ThreadSubscription
from feed.serializers import SUBJECT_MAX_CHARS

REQUEST_STATUSES = ("open", "in_progress", "waiting", "resolved")
PRIORITIES = ("low", "normal", "high", "urgent")
DEFAULT_QUEUE = "Support"


def due_after(priority: str, raised_at: dt.datetime) -> dt.datetime:
    """When a request of `priority` raised at `raised_at` falls due.

    Business days skip Saturday and Sunday (in the server's time zone) and keep the time of day,
    so "1 business day" from Friday 15:00 is Monday 15:00.
    """
    rule = settings.TIDINGS_REQUEST_DUE.get(priority) or settings.TIDINGS_REQUEST_DUE["normal"]
    if rule.endswith("bd"):
        moment = timezone.localtime(raised_at)
        days = int(rule[:-2])
        while days:
            moment += dt.timedelta(days=1)
            if moment.weekday() < 5:
                days -= 1
        return moment
    return raised_at + dt.timedelta(hours=int(rule[:-1]))


def default_queue() -> RequestQueue:
    queue, _ = RequestQueue.objects.get_or_create(name=DEFAULT_QUEUE)
    return queue


def _check_priority(priority: str) -> str:
    if priority not in PRIORITIES:
        raise ValidationError(f"Unknown priority {priority!r}; use one of {', '.join(PRIORITIES)}.")
    return priority


@transaction.atomic
def raise_request(
    *,
    actor: User,
    account: Account,
    subject: str,
    body: str = "",
    priority: str = "normal",
    queue: RequestQueue | None = None,
    due_at: dt.datetime | None = None,
) -> Activity:
    """A support request on `account`, open until someone resolves it.

    Anyone who can see the account may raise one (else `AccountNotFound`); it goes to `queue` (the
    default queue when None) and falls due after its priority's time unless `due_at` is given.
    The author follows it as a thread (DESIGN.md §2, quiet auto-follow): its replies and changes
    reach their home feed, and the notification rules tell them of status changes.
    """
    request = _open_request(
        actor=actor,
        account=account,
        subject=subject,
        body=clean_text(body, required=False),
        priority=_check_priority(priority),
        queue=queue,
        due_at=due_at,
    )
    # ThreadSubscription.create, not get_or_create: the request is new.
    ThreadSubscription.objects.create(user=actor, thread=request)
    events.follow_changed(
        user_id=actor.pk, account_id=account.pk, is_following=True, thread_id=request.pk
    )
    return request


def raise_request_from_email(*, account: Account, email: Activity) -> Activity:
    """A request raised by mail to the support address, once the email is on `account`'s
    timeline: open, in the default queue, due after the normal priority's time, by the system
    (the sender is a customer, not a user). Must run in the email's transaction."""
    return _open_request(
        actor=None,
        account=account,
        subject=email.subject or "Request by email",
        body=email.body,
        details={"email": email.pk, "from": email.details.get("from", "")},
    )


def _open_request(
    *,
    actor: User | None,
    account: Account,
    subject: str,
    body: str,
    priority: str = "normal",
    queue: RequestQueue | None = None,
    due_at: dt.datetime | None = None,
    details: dict[str, Any] | None = None,
) -> Activity:
    """The request activity itself: open, in `queue` (the default one), due after `priority`'s
    time unless `due_at` is given."""
    now = timezone.now()
    return log_activity(
        actor=actor,
        account=account,
        kind=Activity.Kind.REQUEST,
        subject=clean_text(subject, limit=SUBJECT_MAX_CHARS),
        body=body,
        status="open",
        priority=priority,
        queue=queue or default_queue(),
        due_at=due_at or due_after(priority, now),
        occurred_at=now,
        details=details,
    )


def may_work_requests(user: User) -> bool:
    """Support staff, managers and administrators work requests; reps raise them."""
    return user.is_admin or user.role in (User.Role.SUPPORT, User.Role.MANAGER)


def _note(current: Activity, actor: User, action: str, old: str | None, new: str | None) -> None:
    AuditEntry.objects.create(
        activity=current,
        actor=actor,
        action=action,
        detail={"from": old, "to": new},
        at=timezone.now(),
    )


@transaction.atomic
def update_request(
    *,
    actor: User,
    request: Activity,
    status: str | None = None,
    assignee: User | None = None,
    priority: str | None = None,
    resolution: str = "",
) -> Activity:
    """Move a request on (`status`), give it to someone (`assignee`) or re-rank it (`priority`).

    Support staff, managers and administrators may do all three; the assignee may change the
    status. The author may do none of it: a request is worked by the people who serve it
    (`PermissionDenied`). A new priority moves the due time to what it would have been had the
    request been raised at that priority.
    """
    current = lock_visible_activity(actor, request)
    if current.kind != Activity.Kind.REQUEST:
        raise ValidationError("Only requests have a status and an assignee.")
    may_work = may_work_requests(actor)
    if (assignee is not None or priority is not None) and not may_work:
        raise PermissionDenied("Only support staff and managers can assign or re-rank requests.")
    if status is not None and not (may_work or actor.pk == current.assignee_id):
        raise PermissionDenied("Only support staff or the assignee can change the status.")
    if status is not None and status not in REQUEST_STATUSES:
        raise ValidationError(
            f"Unknown status {status!r}; use one of {', '.join(REQUEST_STATUSES)}."
        )
    changed: list[str] = []
    announced: list[happenings.Happening] = []
    if assignee is not None and assignee.pk != current.assignee_id:
        require_visible_to(assignee, current.account, "assignee")
        old = current.assignee.username if current.assignee is not None else None
        _note(current, actor, "assigned", old, assignee.username)
        current.assignee = assignee
        changed.append("assignee")
        announced.append(happenings.Happening(happenings.ASSIGNED, current, actor.pk))
    if priority is not None and priority != current.priority:
        _note(current, actor, "priority", current.priority, _check_priority(priority))
        current.priority = priority
        current.due_at = due_after(priority, current.occurred_at)
        changed += ["priority", "due_at"]
    if status is not None and status != current.status:
        previous = current.status
        current.status = status
        details = dict(current.details)
        if status == "resolved":
            details["resolution"] = clean_text(resolution, required=False)
            details["resolved_at"] = timezone.now().isoformat()
        current.details = details
        changed += ["status", "details"]
        _note(current, actor, "status", previous, status)
        announced.append(
            happenings.Happening(happenings.STATUS_CHANGED, current, actor.pk, previous)
        )
    if not changed:
        return current
    current.save(update_fields=changed)
    events.activity_updated(current)
    for happening in announced:
        happenings.announce(happening)
    return current


@transaction.atomic
def claim_request(*, actor: User, request: Activity) -> Activity:
    """Take a request: it becomes the actor's, and an open one goes in progress.

    Decided on the locked row: a request someone else claimed meanwhile is refused
    (ValidationError), never silently taken over.
    """
    current = lock_visible_activity(actor, request)
    if current.assignee_id not in (None, actor.pk):
        holder = current.assignee.display_name if current.assignee is not None else "someone"
        raise ValidationError(f"{holder} has taken this request meanwhile; assign it instead.")
    return update_request(
        actor=actor,
        request=current,
        assignee=actor,
        status="in_progress" if current.status == "open" else None,
    )
