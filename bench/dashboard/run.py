"""`python -m bench.dashboard`: the dashboard and the request queue on the 1M-activity data set.

Builds (or reuses) `tidings_dashbench` (bench/dashboard/build.py), then times every panel in a
process of its own (bench/dashboard/measure.py) and prints a Markdown table: p50, p99 and max
server time per panel, the SQL queries each costs, and PASS or MISS against the bar.

The bar (docs/benchmarks-dashboard.md says why) is the dashboard's: each panel p99 <= 50 ms in at
most 2 queries; the whole page and its live refresh p99 <= 150 ms in at most 16 queries. The
support queue's cases are measured and shown without a verdict: no bar was set for them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from bench import notes
from bench.dashboard import build

PANEL_P99_MS = 50.0
PANEL_QUERIES = 2
PAGE_P99_MS = 150.0
PAGE_QUERIES = 16


def bar_of(case: str) -> tuple[float, int] | None:
    """(p99 ms, queries) a case must stay within: a page's or a panel's; None for the queue."""
    if "queue" in case or case.startswith("page /requests/"):
        return None
    if case.startswith(("page ", "live refresh ")):
        return PAGE_P99_MS, PAGE_QUERIES
    return PANEL_P99_MS, PANEL_QUERIES


def verdict(result: dict[str, Any]) -> str:
    bar = bar_of(result["case"])
    if bar is None:
        return "—"
    return "PASS" if result["p99"] <= bar[0] and result["queries"] <= bar[1] else "MISS"


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| case | n | p50 ms | p99 ms | max ms | queries | bar (p99 ms / queries) | verdict |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        bar = bar_of(r["case"])
        shown = f"≤ {bar[0]:g} / ≤ {bar[1]}" if bar is not None else "none set"
        lines.append(
            f"| {r['case']} | {r['n']} | {r['p50']} | {r['p99']} | {r['max']} | {r['queries']} "
            f"| {shown} | {verdict(r)} |"
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
    judged = [r for r in report["results"] if bar_of(r["case"]) is not None]
    missed = [r["case"] for r in judged if verdict(r) == "MISS"]
    verdicts = f"{len(judged) - len(missed)} PASS, {len(missed)} MISS" + (
        f": {', '.join(missed)}" if missed else ""
    )
    print(f"\n{verdicts}")
    command = " ".join(["python -m bench.dashboard", *(sys.argv[1:] if argv is None else argv)])
    notes.summarise(
        "dashboard",
        notes.summary(
            "Dashboard and request queue (issue 7)",
            f"`{command}`, run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, clock at"
            f" {report['now']}: {verdicts}. The bar and the readings:"
            " [benchmarks-dashboard.md](benchmarks-dashboard.md).",
            table(report["results"]),
        ),
    )
