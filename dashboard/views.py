"""The team dashboard (`/dashboard/`) and the CSV export of each of its tables.

Managers see the teams they manage, administrators every team, anyone else their own numbers.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from crm.models import User
from dashboard import charts
from dashboard.queries import (
    PERIODS,
    Scope,
    activity_by_rep,
    cold_accounts,
    dashboard_scope,
    filter_choices,
    open_work,
    pipeline_movement,
    team_ticker,
)
from feed.models import Activity
from feed.streams import team_stream_cursor

ACTIVITY_SERIES = [
    ("post", "Posts"),
    ("email", "Emails"),
    ("meeting", "Meetings"),
    ("call", "Calls"),
    ("tasks_done", "Tasks done"),
    ("request", "Requests raised"),
]
WORK_SERIES = [("overdue_tasks", "Overdue tasks"), ("overdue_requests", "Overdue requests")]


def _ticker_filters(params: Any) -> tuple[str | None, str | None]:
    kind = params.get("kind") or None
    person = (params.get("person") or "").strip()[:150] or None
    return (kind if kind in Activity.Kind.values else None), person


def _panels(scope: Scope, query: str) -> dict[str, Any]:
    """What the four tables and their charts show: the page's and the live refresh's context."""
    reps = activity_by_rep(scope)
    work = open_work(scope)
    activity_chart = charts.stacked_bars(
        [(r.person.display_name, [getattr(r, s) for s, _ in ACTIVITY_SERIES]) for r in reps],
        ACTIVITY_SERIES,
    )
    work_chart = charts.stacked_bars(
        [(w.person.display_name, [getattr(w, s) for s, _ in WORK_SERIES]) for w in work],
        WORK_SERIES,
    )
    return {
        "scope": scope,
        "reps": reps,
        "activity_chart_svg": activity_chart.svg("Activity by rep"),
        "cold": cold_accounts(scope),
        "pipeline": pipeline_movement(scope),
        "work": work,
        "work_chart_svg": work_chart.svg("Overdue work by person"),
        "query": query,
    }


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    scope = dashboard_scope(user, request.GET)
    kind, person = _ticker_filters(request.GET)
    # Read before the ticker, so an event committed in between is shown twice rather than lost
    # (the page drops the copy).
    cursor = team_stream_cursor(scope.team.pk) if scope.team is not None else None
    context = {
        **_panels(scope, request.GET.urlencode()),
        "periods": list(PERIODS),
        "choices": filter_choices(user),
        "ticker": team_ticker(scope, kind=kind, person=person),
        "ticker_kind": kind,
        "ticker_person": person,
        "kinds": Activity.Kind.choices,
        "cursor": cursor,
        "now": timezone.now(),
    }
    return render(request, "dashboard/dashboard.html", context)


@login_required
def panels(request: HttpRequest) -> HttpResponse:
    """The four tables of the dashboard with the page's filters, as HTML fragments: what the
    page fetches again (debounced) when its team's stream says something happened, so the
    numbers follow without a reload and stay the ones a direct count gives."""
    user: User = request.user  # type: ignore[assignment]
    scope = dashboard_scope(user, request.GET)
    response = render(request, "dashboard/_panels.html", _panels(scope, request.GET.urlencode()))
    response["Cache-Control"] = "no-store"
    return response


def _cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run: formulas are quoted as text."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _table(panel: str, scope: Scope) -> tuple[list[str], Iterable[list[object]]]:
    if panel == "activity":
        head = ["person", "posts", "emails", "meetings", "calls", "tasks_done", "requests_raised"]
        return [*head, "accounts_touched"], (
            [
                r.person.username,
                r.post,
                r.email,
                r.meeting,
                r.call,
                r.tasks_done,
                r.request,
                r.accounts_touched,
            ]
            for r in activity_by_rep(scope)
        )
    if panel == "cold":
        return ["account", "owner", "last_customer_activity"], (
            [a.name, a.owner.username, a.last_touch.isoformat() if a.last_touch else "never"]  # type: ignore[attr-defined]
            for a in cold_accounts(scope, limit=10_000).rows
        )
    if panel == "pipeline":
        return [
            "when",
            "account",
            "record",
            "by",
            "stage_from",
            "stage_to",
            "amount_from",
            "amount_to",
        ], (
            [
                c.activity.occurred_at.isoformat(),
                c.activity.account.name,
                c.activity.details.get("record_name", ""),
                c.activity.author.username if c.activity.author else "",
                (c.stage or {}).get("old", ""),
                (c.stage or {}).get("new", ""),
                (c.amount or {}).get("old", ""),
                (c.amount or {}).get("new", ""),
            ]
            for c in pipeline_movement(scope, limit=100_000).rows
        )
    if panel == "open-work":
        return ["person", "open_tasks", "overdue_tasks", "open_requests", "overdue_requests"], (
            [w.person.username, w.open_tasks, w.overdue_tasks, w.open_requests, w.overdue_requests]
            for w in open_work(scope)
        )
    raise Http404("No such table.")


@login_required
def export_csv(request: HttpRequest, panel: str) -> HttpResponse:
    """One table of the dashboard as CSV, with the same filters and the same numbers."""
    user: User = request.user  # type: ignore[assignment]
    scope = dashboard_scope(user, request.GET)
    head, rows = _table(panel, scope)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="tidings-{panel}-{scope.period}-{scope.now:%Y%m%d}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(head)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return response
