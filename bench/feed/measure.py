"""One side of the feed benchmark, in a process of its own: `python -m bench.feed.measure SIDE`.

`tidings`: the real API views (`AccountActivitiesView`, `HomeFeedView`), called with a DRF request
from `APIRequestFactory` authenticated by `force_authenticate`; the time is the view call plus
rendering, as Django's handler renders (DRF's dispatch, the visibility check, the query functions
of `feed.queries`, the JSON); the rows are counted from the body outside the timer. Middleware
and authentication (loading the user from a session or token) are outside the timer for both
sides. Page 51 is reached by following `next` cursors from page 1.

`actstream`: django-activity-stream 2.0.0 with its default settings (`bench.feed.peer_settings`):
`target_stream(account)` and `user_stream(user)` sliced by offset ([0:25], [1250:1275]) as its
users page, evaluated (its generic relations are prefetched by default) and turned into a list of
dicts and JSON — a lighter serialization than Tidings' DRF one, which favours the peer.

Prints one JSON object on stdout: per case the timings (ms), queries per page and the EXPLAIN
ANALYZE of the page's slowest query.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.http.response import HttpResponseBase

PAGE_SIZE = 25
DEEP_PAGE = 51


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _explain(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def _run_case(
    name: str,
    page: int,
    call: Callable[[], Any],
    *,
    requests: int,
    budget: float,
    count: Callable[[Any], int] = int,
) -> dict[str, Any]:
    """Time `call` up to `requests` times or `budget` s; `count` of its answer is the number of
    rows on the page (asked outside the timer: reading the answer is the client's work)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        rows = count(call())
    queries = [dict(q) for q in captured.captured_queries]
    for _ in range(3):  # warm-up
        call()
    timings: list[float] = []
    started = time.perf_counter()
    while len(timings) < requests:
        t0 = time.perf_counter()
        call()
        timings.append((time.perf_counter() - t0) * 1000)
        if time.perf_counter() - started > budget and len(timings) >= 10:
            break
    slowest = max(queries, key=lambda q: float(q["time"])) if queries else None
    return {
        "case": name,
        "page": page,
        "rows": rows,
        "n": len(timings),
        "p50": statistics.median(timings),
        "p99": _percentile(timings, 0.99),
        "max": max(timings),
        "queries": len(queries),
        "sql": [q["sql"] for q in queries],
        "slowest_sql": slowest["sql"] if slowest else "",
        "explain": _explain(slowest["sql"]) if slowest else "",
    }


def _tidings(users: dict[str, int], account_id: int, requests: int, budget: float) -> list[Any]:
    from rest_framework.test import APIRequestFactory, force_authenticate

    from crm.models import User
    from feed.api import AccountActivitiesView, HomeFeedView

    factory = APIRequestFactory()
    timeline_view = AccountActivitiesView.as_view()
    home_view = HomeFeedView.as_view()

    def render(response: Any) -> None:
        """As Django's handler does: a DRF Response renders; a plain response is written."""
        if callable(getattr(response, "render", None)):
            response.render()

    def timeline(user: User, before: str | None) -> HttpResponseBase:
        query = {"before": before} if before else {}
        request = factory.get(f"/api/v1/accounts/{account_id}/activities/", query)
        force_authenticate(request, user=user)
        response = timeline_view(request, account_id=account_id)
        render(response)
        assert response.status_code == 200, response.content[:300]
        return response

    def home(user: User, before: str | None) -> HttpResponseBase:
        query = {"before": before} if before else {}
        request = factory.get("/api/v1/feed/", query)
        force_authenticate(request, user=user)
        response = home_view(request)
        render(response)
        assert response.status_code == 200, response.content[:300]
        return response

    def cursor_of(fetch: Callable[[str | None], HttpResponseBase]) -> tuple[int, str | None]:
        """The deepest page up to DEEP_PAGE and its cursor, following `next` from page 1."""
        page, before = 1, None
        while page < DEEP_PAGE:
            following = json.loads(fetch(before).content)["next"]
            if following is None:
                break
            page, before = page + 1, following
        return page, before

    results = []
    cases: list[tuple[str, Callable[[User, str | None], HttpResponseBase], str]] = [
        ("timeline, hot account", timeline, "typical"),
        ("home, typical user (50 follows)", home, "typical"),
        ("home, quiet-follows user (50 quiet)", home, "quiet"),
        ("home, 500-follows user", home, "big"),
    ]
    for name, fetch, who in cases:
        user = User.objects.get(pk=users[who])

        def bound(before: str | None, fetch: Any = fetch, user: User = user) -> HttpResponseBase:
            return fetch(user, before)

        deep, cursor = cursor_of(bound)
        for page, before in ((1, None), (deep, cursor)):
            results.append(
                _run_case(
                    name,
                    page,
                    lambda before=before, bound=bound: bound(before),
                    requests=requests,
                    budget=budget,
                    count=lambda response: len(json.loads(response.content)["results"]),
                )
            )
            print(f"  tidings {name} page {page}: p99 {results[-1]['p99']:.2f} ms", file=sys.stderr)
    return results


def _actstream(users: dict[str, int], account_id: int, requests: int, budget: float) -> list[Any]:
    from actstream.models import target_stream, user_stream

    from crm.models import Account, User

    def serialize(actions: Any) -> int:
        rows = [
            {
                "id": action.id,
                "verb": action.verb,
                "actor": action.actor.username if action.actor else None,
                "target": action.target.name if action.target else None,
                "target_id": action.target_object_id,
                "timestamp": action.timestamp.isoformat(),
                "description": action.description,
            }
            for action in actions
        ]
        json.dumps(rows)
        return len(rows)

    account = Account.objects.get(pk=account_id)
    results = []
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("timeline, hot account", lambda: target_stream(account)),
    ]
    for label, who in (
        ("home, typical user (50 follows)", "typical"),
        ("home, quiet-follows user (50 quiet)", "quiet"),
        ("home, 500-follows user", "big"),
    ):
        user = User.objects.get(pk=users[who])
        cases.append((label, lambda user=user: user_stream(user)))
    for name, stream in cases:
        total = stream().count()
        deep = max(1, min(DEEP_PAGE, -(-total // PAGE_SIZE)))
        for page in (1, deep):
            lo = (page - 1) * PAGE_SIZE
            results.append(
                _run_case(
                    name,
                    page,
                    lambda stream=stream, lo=lo: serialize(stream()[lo : lo + PAGE_SIZE]),
                    requests=requests,
                    budget=budget,
                )
            )
            print(
                f"  actstream {name} page {page}: p99 {results[-1]['p99']:.2f} ms", file=sys.stderr
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("side", choices=["tidings", "actstream"])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per case at most")
    parser.add_argument("--users", required=True, help="JSON {typical, quiet, big} user ids")
    parser.add_argument("--account", type=int, required=True)
    args = parser.parse_args()

    import django

    django.setup()
    users = json.loads(args.users)
    side = _tidings if args.side == "tidings" else _actstream
    results = side(users, args.account, args.requests, args.budget)
    json.dump({"side": args.side, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
