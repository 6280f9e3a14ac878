"""The dashboard's panels timed on the 1M-activity data set: `python -m bench.dashboard.measure`.

Runs in a process of its own on `tidings_dashbench` (DATABASE_URL set by bench.dashboard.run).
Each case calls one query function of `dashboard.queries` or `support.queries` as the page does,
evaluated in full; "page" cases render the whole view (`dashboard.views.dashboard`,
`support.views.queue`) from a RequestFactory request. The clock is set to the data set's last day,
so "week" and "month" cover the newest activity. Prints one JSON object: per case p50, p99, max
(ms) and the number of SQL queries.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _case(name: str, call: Callable[[], object], *, runs: int, budget: float) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        call()
    queries = len(captured.captured_queries)
    for _ in range(2):
        call()
    timings: list[float] = []
    started = time.perf_counter()
    while len(timings) < runs:
        t0 = time.perf_counter()
        call()
        timings.append((time.perf_counter() - t0) * 1000)
        if time.perf_counter() - started > budget and len(timings) >= 20:
            break
    return {
        "case": name,
        "n": len(timings),
        "p50": round(statistics.median(timings), 2),
        "p99": round(_percentile(timings, 0.99), 2),
        "max": round(max(timings), 2),
        "queries": queries,
    }


def main() -> None:
    import django

    django.setup()
    from django.test import RequestFactory
    from django.utils import timezone

    from bench.dashboard.build import MANAGER, SQUAD_MANAGER, SUPPORT
    from crm.models import User
    from dashboard import queries as panels
    from dashboard import views as dashboard_views
    from feed.models import Activity
    from support import views as support_views
    from support.queries import QueueFilters, request_queue

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    budget = float(sys.argv[2]) if len(sys.argv) > 2 else 8.0
    last = Activity.objects.order_by("-occurred_at").values_list("occurred_at", flat=True)[0]
    now = last + dt.timedelta(seconds=1)
    manager = User.objects.get(pk=MANAGER)
    squad = User.objects.get(pk=SQUAD_MANAGER)
    support = User.objects.get(pk=SUPPORT)
    rep = User.objects.get(pk=1)
    results = []

    def add(name: str, call: Callable[[], object]) -> None:
        results.append(_case(name, call, runs=runs, budget=budget))
        print(json.dumps(results[-1]), file=sys.stderr)

    for label, user, params in [
        ("manager week", manager, {"period": "week"}),
        ("manager month", manager, {"period": "month"}),
        ("manager month, one region", manager, {"period": "month", "region": "Region 1"}),
        ("manager of 20 month", squad, {"period": "month"}),
        ("rep month (own numbers)", rep, {"period": "month"}),
    ]:
        scope = panels.dashboard_scope(user, params, now=now)
        add(f"{label}: activity by rep", lambda s=scope: panels.activity_by_rep(s))
        add(f"{label}: going cold", lambda s=scope: panels.cold_accounts(s))
        add(f"{label}: pipeline movement", lambda s=scope: panels.pipeline_movement(s))
        add(f"{label}: open work", lambda s=scope: panels.open_work(s))
        add(f"{label}: ticker", lambda s=scope: panels.team_ticker(s))
    scope = panels.dashboard_scope(manager, {"period": "week"}, now=now)
    add(
        "manager: ticker, calls by one rep",
        lambda: panels.team_ticker(scope, kind="call", person="rep0001"),
    )
    for label, filters in [
        ("queue: all open", QueueFilters()),
        ("queue: overdue", QueueFilters(overdue=True)),
        ("queue: mine", QueueFilters(mine=True)),
        ("queue: unassigned, urgent", QueueFilters(unassigned=True, priority="urgent")),
        ("queue: one team", QueueFilters(team=2)),
    ]:
        add(f"support {label}", lambda f=filters: request_queue(support, f, now=now))
    add("manager queue: all open", lambda: request_queue(manager, QueueFilters(), now=now))

    factory = RequestFactory()

    def page(view: Callable[..., Any], path: str, user: User) -> Callable[[], object]:
        def call() -> object:
            request = factory.get(path)
            request.user = user
            request.session = {}  # type: ignore[assignment]
            request._messages = []  # type: ignore[attr-defined]
            return view(request).content

        return call

    # Whole pages with the clock at the data set's end, so their periods cover its newest rows
    # as the panels' cases do: the page a manager opens, and the fragment its live refresh
    # fetches again when the team's stream moves.
    with mock.patch.object(timezone, "now", return_value=now):
        for who, user in [("manager of 20", squad), ("manager of 203", manager)]:
            add(
                f"page /dashboard/ ({who}, month)",
                page(dashboard_views.dashboard, "/dashboard/?period=month", user),
            )
            add(
                f"live refresh /dashboard/panels/ ({who}, month)",
                page(dashboard_views.panels, "/dashboard/panels/?period=month", user),
            )
        add("page /requests/ (support)", page(support_views.queue, "/requests/", support))
    print(json.dumps({"now": now.isoformat(), "results": results}))


if __name__ == "__main__":
    main()
