"""Working a support request: who has it and where it stands."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from crm.models import User
from feed import events, happenings
from feed.actions.activities import clean_text, require_visible_to
from feed.actions.changes import lock_visible_activity
from feed.models import Activity

REQUEST_STATUSES = ("open", "in_progress", "waiting", "resolved")


def _may_work_requests(user: User) -> bool:
    return user.is_admin or user.role in (User.Role.SUPPORT, User.Role.MANAGER)


@transaction.atomic
def update_request(
    *,
    actor: User,
    request: Activity,
    status: str | None = None,
    assignee: User | None = None,
    resolution: str = "",
) -> Activity:
    """Move a request on (`status`) or give it to someone (`assignee`).

    Support staff, managers and administrators may do both; the assignee may change the status.
    The author may do neither: a request is worked by the people who serve it.
    """
    current = lock_visible_activity(actor, request)
    if current.kind != Activity.Kind.REQUEST:
        raise ValidationError("Only requests have a status and an assignee.")
    may_work = _may_work_requests(actor)
    if assignee is not None and not may_work:
        raise PermissionDenied("Only support staff and managers can assign requests.")
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
        current.assignee = assignee
        changed.append("assignee")
        announced.append(happenings.Happening(happenings.ASSIGNED, current, actor.pk))
    if status is not None and status != current.status:
        previous = current.status
        current.status = status
        details = dict(current.details)
        if status == "resolved":
            details["resolution"] = clean_text(resolution, required=False)
            details["resolved_at"] = timezone.now().isoformat()
        current.details = details
        changed += ["status", "details"]
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
