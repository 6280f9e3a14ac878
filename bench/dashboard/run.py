"""`python -m bench.dashboard`: the dashboard and the request queue on the 1M-activity data set.

Builds (or reuses) `tidings_dashbench` (bench/dashboard/build.py), then times every panel in a
process of its own (bench/dashboard/measure.py) and prints a Markdown table: p50, p99 and max
server time per panel, the SQL queries each costs, and PASS or MISS against the bar.

The bar (docs/benchmarks-dashboard.md says why): each panel, and each support-queue list, p99
<= 50 ms in at most 2 queries; a whole page (the dashboard, its live refresh, the queue) p99 <=
150 ms in at most 16 queries.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

from bench.dashboard import build

PANEL_P99_MS = 50.0
PANEL_QUERIES = 2
PAGE_P99_MS = 150.0
PAGE_QUERIES = 16


def bar_of(case: str) -> tuple[float, int]:
    """(p99 ms, queries) a case must stay within: a page's or a panel's."""
    if case.startswith(("page ", "live refresh ")):
        return PAGE_P99_MS, PAGE_QUERIES
    return PANEL_P99_MS, PANEL_QUERIES


def verdict(result: dict[str, Any]) -> str:
    p99, queries = bar_of(result["case"])
    return "PASS" if result["p99"] <= p99 and result["queries"] <= queries else "MISS"


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| case | n | p50 ms | p99 ms | max ms | queries | bar (p99 ms / queries) | verdict |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        p99, queries = bar_of(r["case"])
        lines.append(
            f"| {r['case']} | {r['n']} | {r['p50']} | {r['p99']} | {r['max']} | {r['queries']} "
            f"| ≤ {p99:g} / ≤ {queries} | {verdict(r)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__)
    parser.add_argument("--rebuild", action="store_true", help="rebuild tidings_dashbench")
    parser.add_argument("--runs", type=int, default=200, help="timed calls per case (at most)")
    parser.add_argument("--budget", type=float, default=8.0, help="seconds per case (at most)")
    args = parser.parse_args(argv)
    built = build.ensure(rebuild=args.rebuild)
    print(
        f"data set: {build.DB_NAME} ({'reused' if built['reused'] else 'built'})", file=sys.stderr
    )
    env = dict(os.environ)
    env.update(
        DATABASE_URL=build.DATABASE_URL,
        DJANGO_SETTINGS_MODULE="config.settings",
        TIDINGS_LOG_LEVEL="WARNING",
        DJANGO_DEBUG="false",
    )
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "bench.dashboard.measure", str(args.runs), str(args.budget)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=build.feed_build.REPO_ROOT,
    )
    if done.returncode != 0:
        raise SystemExit(f"measurement failed:\n{done.stderr[-4000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"clock set to {report['now']} (the data set's last activity)")
    print(table(report["results"]))
    missed = [r["case"] for r in report["results"] if verdict(r) == "MISS"]
    print(
        f"\n{len(report['results']) - len(missed)} PASS, {len(missed)} MISS"
        + (f": {', '.join(missed)}" if missed else "")
    )
