"""Reads of the support queue: one function per question, a fixed number of queries each.

Requests are activities (`feed`); this module only asks questions of them, always through the
visibility policy, so a queue never lists a request on an account its reader cannot see.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from crm.visibility import AccountNotFound, visible_accounts
from feed.models import Activity, AuditEntry
from feed.queries import get_visible_activity

# The soonest due are what a queue is for; filters narrow the rest (bench: a 100-row page
# renders in half the time of 200 on the 1M-activity data set).
QUEUE_LIMIT = 100


@dataclass(frozen=True)
class QueueFilters:
    """What the queue page was asked for; every field narrows the list."""

    mine: bool = False
    unassigned: bool = False
    team: int | None = None
    queue: int | None = None
    overdue: bool = False
    priority: str | None = None
    account: int | None = None
    include_resolved: bool = False

    @classmethod
    def from_query(cls, params: Any) -> QueueFilters:
        """From a page's or an export's query string; nonsense is ignored, never a 500."""

        def number(name: str) -> int | None:
            raw = str(params.get(name) or "")
            return int(raw) if raw.isdecimal() and len(raw) < 12 else None

        priority = params.get("priority") or None
        return cls(
            mine=params.get("mine") == "1",
            unassigned=params.get("unassigned") == "1",
            team=number("team"),
            queue=number("queue"),
            overdue=params.get("overdue") == "1",
            priority=priority if priority in ("low", "normal", "high", "urgent") else None,
            account=number("account"),
            include_resolved=params.get("resolved") == "1",
        )


def visible_requests(user: Any) -> QuerySet[Activity]:
    """Every request `user` may see (on a visible account, not deleted)."""
    return Activity.objects.filter(
        kind=Activity.Kind.REQUEST,
        deleted_at__isnull=True,
        account__in=visible_accounts(user),
    )


def request_queue(
    user: Any, filters: QueueFilters, *, now: dt.datetime | None = None, limit: int = QUEUE_LIMIT
) -> list[Activity]:
    """Requests as the queue shows them: unresolved ones (unless asked), soonest due first.

    One query, whatever the filters: author, assignee, account and queue are joined in.
    """
    now = now or timezone.now()
    requests = visible_requests(user)
    if not filters.include_resolved:
        requests = requests.exclude(status="resolved")
    if filters.mine:
        requests = requests.filter(assignee_id=user.pk)
    if filters.unassigned:
        requests = requests.filter(assignee__isnull=True)
    if filters.team is not None:
        requests = requests.filter(account__team_id=filters.team)
    if filters.queue is not None:
        requests = requests.filter(queue_id=filters.queue)
    if filters.overdue:
        requests = requests.filter(due_at__lt=now).exclude(status="resolved")
    if filters.priority:
        requests = requests.filter(priority=filters.priority)
    if filters.account is not None:
        requests = requests.filter(account_id=filters.account)
    return list(
        requests.select_related("author", "assignee", "account", "queue").order_by(
            F("due_at").asc(nulls_last=True), "id"
        )[:limit]
    )


def get_visible_request(user: Any, request_id: int | str) -> Activity:
    """The request with its replies if `user` may see it; `AccountNotFound` for anything else
    (another kind of activity included, so ids of other activities tell nothing)."""
    activity = get_visible_activity(user, request_id)
    if activity.kind != Activity.Kind.REQUEST:
        raise AccountNotFound()
    return activity


def request_account_id(request_id: int) -> int | None:
    """The account a request is on, unchecked: only for reading a stream cursor before the
    request itself is read through the visibility policy (`get_visible_request`)."""
    return (
        Activity.objects.filter(pk=request_id, kind=Activity.Kind.REQUEST)
        .values_list("account_id", flat=True)
        .first()
    )


def request_history(request: Activity) -> list[AuditEntry]:
    """Every change of status, assignee and priority of `request`, oldest first."""
    return list(
        AuditEntry.objects.filter(activity=request, action__in=("status", "assigned", "priority"))
        .select_related("actor")
        .order_by("at", "id")
    )


def request_workers(request: Activity) -> QuerySet[Any]:
    """People a request can be given to: support staff, managers and admins who can see it."""
    from crm.models import User
    from crm.visibility import people_who_can_see

    return (
        people_who_can_see(request.account)
        .filter(Q(role__in=[User.Role.SUPPORT, User.Role.MANAGER, User.Role.ADMIN]))
        .order_by("username")
    )
