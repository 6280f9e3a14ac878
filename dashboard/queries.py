"""Reads of the team dashboard: one function per panel, each a fixed number of queries.

Every panel counts only activity on accounts its reader can see (`crm.visibility`), narrowed by
the period, region and industry filters. The numbers are the same ones a direct count over the
timelines gives; tests/dashboard/test_numbers.py checks them against one written independently.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet, Window
from django.utils import timezone

from crm.models import Account, AccountTeamMember, Team, User
from crm.visibility import visible_accounts
from feed.models import Activity, Follow

PERIODS = {
    "day": dt.timedelta(days=1),
    "week": dt.timedelta(days=7),
    "month": dt.timedelta(days=30),
}
KINDS_COUNTED = ("post", "email", "meeting", "call", "request")
ROW_LIMIT = 100


@dataclass(frozen=True)
class Scope:
    """Whose numbers, over which accounts and which period: the filters, resolved for a reader."""

    viewer: User
    teams: list[Team]
    team: Team | None
    people: list[User]
    period: str
    since: dt.datetime
    now: dt.datetime
    region: str
    industry: str
    cold_days: int

    @property
    def accounts(self) -> QuerySet[Account]:
        """Visible accounts, narrowed by region and industry: what person panels count on."""
        accounts = visible_accounts(self.viewer)
        if self.region:
            accounts = accounts.filter(region=self.region)
        if self.industry:
            accounts = accounts.filter(industry=self.industry)
        return accounts

    @property
    def team_accounts(self) -> QuerySet[Account]:
        """The team's accounts (a rep's own) among `accounts`: what pipeline movement covers."""
        if self.team is not None:
            return self.accounts.filter(team_id=self.team.pk)
        return self.accounts.filter(owner_id=self.viewer.pk)

    @property
    def person_ids(self) -> QuerySet[User, Any] | list[int]:
        """The people in scope, for SQL: a team's members as a subquery (the same rule as
        `people`). A list of 200 ids put 600 parameters in a panel's query, and psycopg's
        handling of them cost more than PostgreSQL's answer (docs/benchmarks-dashboard.md)."""
        if self.team is not None:
            return User.objects.filter(team_id=self.team.pk, is_active=True).values("pk")
        return [person.pk for person in self.people]


def watchable_teams(user: User) -> list[Team]:
    """Teams whose numbers `user` may see: all for admins, managed ones for managers."""
    if user.is_admin:
        return list(Team.objects.order_by("name"))
    if user.role != User.Role.MANAGER or not user.is_active:
        # The same rule as crm.visibility: a manager demoted to rep keeps no team's view, even
        # while still listed among the team's managers.
        return []
    return list(Team.objects.filter(managers=user.pk).order_by("name"))


def dashboard_scope(user: User, params: Any, *, now: dt.datetime | None = None) -> Scope:
    """The scope a dashboard request asks for; what the reader may not see is never chosen.

    A manager picks one of their teams (the first by default) and sees its members' numbers; an
    administrator any team; everyone else sees their own numbers only.
    """
    now = now or timezone.now()
    period = params.get("period") if params.get("period") in PERIODS else "week"
    teams = watchable_teams(user)
    chosen = str(params.get("team") or "")
    team = next((t for t in teams if str(t.pk) == chosen), teams[0] if teams else None)
    if team is not None:
        people = list(
            User.objects.filter(team_id=team.pk, is_active=True).order_by("first_name", "username")
        )
    else:
        people = [user]
    raw_days = str(params.get("cold_days") or "")
    cold_days = int(raw_days) if raw_days.isdecimal() and 0 < int(raw_days) <= 365 else None
    return Scope(
        viewer=user,
        teams=teams,
        team=team,
        people=people,
        period=period,
        since=now - PERIODS[period],
        now=now,
        region=str(params.get("region") or "")[:80],
        industry=str(params.get("industry") or "")[:80],
        cold_days=cold_days or settings.TIDINGS_COLD_DAYS,
    )


def filter_choices(user: User) -> dict[str, list[str]]:
    """Regions and industries of the accounts `user` can see, for the filter menus."""
    accounts = visible_accounts(user)
    # order_by() on the field itself: Account's default ordering (name, id) would otherwise join
    # the DISTINCT and list every account's region once per account.
    regions = accounts.exclude(region="").order_by("region").values_list("region", flat=True)
    industries = accounts.exclude(industry="").order_by("industry")
    return {
        "regions": list(regions.distinct()),
        "industries": list(industries.values_list("industry", flat=True).distinct()),
    }


@dataclass
class RepActivity:
    person: User
    post: int = 0
    email: int = 0
    meeting: int = 0
    call: int = 0
    request: int = 0
    tasks_done: int = 0
    accounts_touched: int = 0

    @property
    def total(self) -> int:
        return self.post + self.email + self.meeting + self.call + self.request + self.tasks_done


def activity_by_rep(scope: Scope) -> list[RepActivity]:
    """What each person did in the period: two queries (what they wrote, tasks they finished)."""
    mine = Activity.objects.filter(
        author_id__in=scope.person_ids,
        occurred_at__gte=scope.since,
        occurred_at__lt=scope.now,
        deleted_at__isnull=True,
        account__in=scope.accounts,
    )
    counts = {
        row["author_id"]: row
        for row in mine.values("author_id").annotate(
            **{kind: Count("id", filter=Q(kind=kind)) for kind in KINDS_COUNTED},
            accounts_touched=Count("account_id", distinct=True),
        )
    }
    done = dict(
        Activity.objects.filter(
            kind=Activity.Kind.TASK,
            assignee_id__in=scope.person_ids,
            done_at__gte=scope.since,
            done_at__lt=scope.now,
            deleted_at__isnull=True,
            account__in=scope.accounts,
        )
        .values("assignee_id")
        .annotate(n=Count("id"))
        .values_list("assignee_id", "n")
    )
    rows = []
    for person in scope.people:
        found = counts.get(person.pk, {})
        rows.append(
            RepActivity(
                person=person,
                **{kind: found.get(kind, 0) for kind in KINDS_COUNTED},
                tasks_done=done.get(person.pk, 0),
                accounts_touched=found.get("accounts_touched", 0),
            )
        )
    return rows


@dataclass
class ColdAccounts:
    count: int
    rows: Sequence[Account]  # annotated with `last_touch` (None: never)


def cold_accounts(scope: Scope, *, limit: int = ROW_LIMIT) -> ColdAccounts:
    """Accounts the people in scope own or follow with no customer-facing activity (email,
    meeting, call) for `scope.cold_days` days, coldest first, all counted, `limit` listed.

    One query (the coldest, each row carrying the count as a window), a join of the watched
    accounts with their last touch (`feed.AccountTouch`, kept by the actions): reading the
    timelines instead meant three index seeks per watched account, 42 ms for 2,000 accounts.
    """
    people = scope.person_ids
    watched = (
        Q(owner_id__in=people)
        | Q(pk__in=Follow.objects.filter(user_id__in=people).values("account_id"))
        | Q(pk__in=AccountTeamMember.objects.filter(user_id__in=people).values("account_id"))
    )
    cutoff = scope.now - dt.timedelta(days=scope.cold_days)
    cold = scope.accounts.filter(watched).filter(
        Q(touch__isnull=True) | Q(touch__last_touch_at__lt=cutoff)
    )
    rows = list(
        cold.select_related("owner")
        .annotate(last_touch=F("touch__last_touch_at"), cold_count=Window(Count("pk")))
        .order_by(F("touch__last_touch_at").asc(nulls_first=True), "pk")[:limit]
    )
    return ColdAccounts(count=rows[0].cold_count if rows else 0, rows=rows)  # type: ignore[attr-defined]


@dataclass
class PipelineChange:
    activity: Activity
    stage: dict[str, str] | None
    amount: dict[str, str] | None
    delta: Decimal | None


@dataclass
class PipelineMovement:
    stage_changes: int = 0
    amount_changes: int = 0
    net_amount: Decimal = Decimal(0)
    rows: list[PipelineChange] = field(default_factory=list)
    by_stage: dict[str, int] = field(default_factory=dict)


def _amount(text: str | None) -> Decimal | None:
    try:
        return Decimal(str(text).replace(",", "")) if text not in (None, "") else None
    except InvalidOperation:
        return None


def pipeline_movement(scope: Scope, *, limit: int = ROW_LIMIT) -> PipelineMovement:
    """Stage and amount changes of opportunities in the period, from the tracked changes
    (`change` activities): all counted from their `details` alone, the newest `limit` listed
    with their author and account. Two queries: building every change of a month as a model
    instance cost more than the query (docs/benchmarks-dashboard.md)."""
    changes = Activity.objects.filter(
        kind=Activity.Kind.CHANGE,
        deleted_at__isnull=True,
        occurred_at__gte=scope.since,
        occurred_at__lt=scope.now,
        account__in=scope.team_accounts,
    ).filter(
        Q(details__fields__has_key="stage")
        | Q(details__fields__has_key="amount")
        # The older one-field shape ({"field": "stage", "old": ..., "new": ...}).
        | Q(details__field__in=["stage", "amount"])
    )
    movement = PipelineMovement()
    deltas: dict[int, Decimal | None] = {}
    for pk, details in changes.values_list("pk", "details"):
        stage, amount = _stage_and_amount(details)
        deltas[pk] = None
        if amount is not None:
            movement.amount_changes += 1
            old, new = _amount(amount.get("old")), _amount(amount.get("new"))
            deltas[pk] = (new or Decimal(0)) - (old or Decimal(0))
            movement.net_amount += deltas[pk] or Decimal(0)
        if stage is not None:
            movement.stage_changes += 1
            movement.by_stage[stage["new"]] = movement.by_stage.get(stage["new"], 0) + 1
    newest = changes.select_related("author", "account").order_by("-occurred_at", "-id")[:limit]
    for change in newest:
        stage, amount = _stage_and_amount(change.details)
        movement.rows.append(PipelineChange(change, stage, amount, deltas.get(change.pk)))
    return movement


def _stage_and_amount(details: dict[str, Any]) -> tuple[dict[str, str] | None, ...]:
    fields = details.get("fields") or {
        details.get("field"): {"old": details.get("old"), "new": details.get("new")}
    }
    return fields.get("stage"), fields.get("amount")


@dataclass
class OpenWork:
    person: User
    overdue_tasks: int = 0
    overdue_requests: int = 0
    open_tasks: int = 0
    open_requests: int = 0


def open_work(scope: Scope) -> list[OpenWork]:
    """Open and overdue tasks and requests assigned to each person in scope, now. One query."""
    rows = (
        Activity.objects.filter(
            assignee_id__in=scope.person_ids,
            deleted_at__isnull=True,
            account__in=scope.accounts,
        )
        .filter(
            Q(kind=Activity.Kind.TASK, done_at__isnull=True)
            | (Q(kind=Activity.Kind.REQUEST) & ~Q(status="resolved"))
        )
        .values("assignee_id")
        .annotate(
            open_tasks=Count("id", filter=Q(kind=Activity.Kind.TASK)),
            open_requests=Count("id", filter=Q(kind=Activity.Kind.REQUEST)),
            overdue_tasks=Count("id", filter=Q(kind=Activity.Kind.TASK, due_at__lt=scope.now)),
            overdue_requests=Count(
                "id", filter=Q(kind=Activity.Kind.REQUEST, due_at__lt=scope.now)
            ),
        )
    )
    found = {row.pop("assignee_id"): row for row in rows}
    return [OpenWork(person=person, **found.get(person.pk, {})) for person in scope.people]


def team_ticker(
    scope: Scope, *, kind: str | None = None, person: str | None = None, limit: int = 30
) -> list[Activity]:
    """The newest activity by the people in scope on accounts the reader can see (a team's: on
    the team's accounts, as its live stream carries them). Two queries: the newest ids (read
    index-only through `feed_by_author_live`), then those rows with their joins by primary key.
    In one query PostgreSQL spent 18-23 ms planning the joins with the visibility subqueries,
    and for a small team read each member's whole history from the table (103 ms)."""
    recent = Activity.objects.filter(
        author_id__in=scope.person_ids,
        deleted_at__isnull=True,
        account__in=visible_accounts(scope.viewer),
    )
    if scope.team is not None:
        recent = recent.filter(account__team_id=scope.team.pk)
    if kind:
        recent = recent.filter(kind=kind)
    if person:
        recent = recent.filter(author__username=person)
    newest = list(recent.order_by("-occurred_at", "-id").values_list("pk", flat=True)[:limit])
    return list(
        Activity.objects.filter(pk__in=newest)
        .select_related("author", "account", "assignee", "parent")
        .order_by("-occurred_at", "-id")
    )
