"""Figures, bars and the Markdown report (printed, and written to docs/benchmarks.md)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.clients import Group, Phase

KIB = 1024


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Result:
    key: str
    label: str
    connect_big: float = math.nan
    connect_small: float = math.nan
    rss_before: int = 0
    rss_after: int = 0
    extensions: str = ""
    phases: dict[str, Phase] = field(default_factory=dict)
    unexpected: int = 0
    unexpected_sample: str = ""
    closed: int = 0
    http_errors: int = 0  # failed (and retried) POSTs of posts and tickets
    http_error_sample: str = ""
    error: str = ""

    def add_group(self, group: Group) -> None:
        self.unexpected += group.unexpected
        self.unexpected_sample = self.unexpected_sample or group.unexpected_sample
        self.closed += group.closed

    def phase(self, name: str) -> Phase | None:
        return self.phases.get(name)

    def ms(self, name: str, what: str, q: float) -> float:
        phase = self.phases.get(name)
        if phase is None:
            return math.nan
        values = {
            "each": phase.latencies,
            "first": phase.first,
            "last": phase.last,
            "http": phase.http,
        }[what]
        return pct(values, q) * 1000

    def per_connection_kib(self, connections: int) -> float:
        if not self.rss_after:
            return math.nan
        return (self.rss_after - self.rss_before) / connections

    def faults(self) -> dict[str, int]:
        total = {"missing": 0, "duplicates": 0, "out_of_order": 0}
        for phase in self.phases.values():
            for key in total:
                total[key] += getattr(phase, key)
        return {**total, "unexpected": self.unexpected, "closed": self.closed}


def fmt(value: float, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def figures_table(results: Sequence[Result], plan: Any) -> list[str]:
    big, small = plan.big, plan.small
    rows: list[tuple[str, Callable[[Result], str]]] = [
        (f"**{small} followers**, posts one at a time", lambda r: ""),
        ("posts measured", lambda r: _posts(r, "small", plan.budget)),
        ("p50 to each follower (ms)", lambda r: fmt(r.ms("small", "each", 50))),
        ("p99 to each follower (ms)", lambda r: fmt(r.ms("small", "each", 99))),
        ("p99 to the last follower (ms)", lambda r: fmt(r.ms("small", "last", 99))),
        # The path before the fan-out: the request, its statements, the commit, the hand-over.
        ("p50 / p99 to the first follower (ms)", lambda r: _pair(r, "small", "first", 99)),
        ("HTTP POST answered, p50 (ms)", lambda r: fmt(r.ms("small", "http", 50))),
        (f"**{big:,} followers**, posts one at a time", lambda r: ""),
        ("posts measured", lambda r: _posts(r, "big", plan.budget)),
        ("p50 to each follower (ms)", lambda r: fmt(r.ms("big", "each", 50))),
        ("p99 to each follower (ms)", lambda r: fmt(r.ms("big", "each", 99))),
        ("p50 to the last follower (ms)", lambda r: fmt(r.ms("big", "last", 50))),
        ("p99 to the last follower (ms)", lambda r: fmt(r.ms("big", "last", 99))),
        ("HTTP POST answered, p50 (ms)", lambda r: fmt(r.ms("big", "http", 50))),
        (
            f"**Stale verdicts**: a post after {plan.stale_idle:.1f} s idle (Tidings only)",
            lambda r: "",
        ),
        (
            f"{small} followers: p50 / p99 to each (ms)",
            lambda r: _pair(r, "small-stale", "each", 99),
        ),
        (f"{big:,} followers: p50 / p99 to each (ms)", lambda r: _pair(r, "big-stale", "each", 99)),
        (f"{big:,} followers: to the last (ms)", lambda r: fmt(r.ms("big-stale", "last", 100))),
        (f"**Burst**: {plan.burst_posts} posts back to back, {big:,} followers", lambda r: ""),
        ("deliveries per second", lambda r: fmt(_rate(r), 0)),
        ("first post sent → last delivery (s)", lambda r: fmt(_span(r), 2)),
        ("p50 / p99 to each follower (ms)", lambda r: _pair(r, "burst", "each", 99)),
        ("HTTP POST answered, p50 (ms)", lambda r: fmt(r.ms("burst", "http", 50))),
        ("**Correctness**, all phases", lambda r: ""),
        ("deliveries expected / received", lambda r: _delivered(r)),
        ("HTTP errors (posts and tickets, retried)", lambda r: _http_errors(r)),
        (
            f"undelivered {plan.burst_wait + plan.drain:.0f} s after the last post"
            " / duplicated / out of order",
            lambda r: _faults(r),
        ),
        ("**Connections**", lambda r: ""),
        (f"{big:,} connects, tickets pre-issued (s)", lambda r: fmt(r.connect_big, 2)),
        (f"{small} connects, ticket fetched over HTTP (s)", lambda r: fmt(r.connect_small, 2)),
        (f"server RSS idle → with {big:,} idle (MiB)", lambda r: _rss(r)),
        ("server memory per idle connection (KiB)", lambda r: fmt(r.per_connection_kib(big))),
        ("permessage-deflate negotiated", lambda r: "yes" if r.extensions else "no"),
    ]
    header = ["", *(r.label for r in results)]
    body = []
    for title, value in rows:
        body.append([title, *(("" if r.error else value(r)) for r in results)])
    if any(r.error for r in results):
        body.append(["error", *(r.error[:160] or "" for r in results)])
    return _table(header, body)


def _posts(r: Result, name: str, budget: float) -> str:
    phase = r.phase(name)
    if phase is None:
        return "n/a"
    made = len(phase.sent)
    if made >= phase.planned:
        return f"{made}"
    return f"{made} of {phase.planned} (time budget {budget:.0f} s)"


def _pair(r: Result, name: str, what: str, high: float = 100) -> str:
    return f"{fmt(r.ms(name, what, 50))} / {fmt(r.ms(name, what, high))}"


def _rate(r: Result) -> float:
    phase = r.phase("burst")
    return phase.rate if phase else math.nan


def _span(r: Result) -> float:
    phase = r.phase("burst")
    return phase.last_received - phase.first_sent if phase else math.nan


def _delivered(r: Result) -> str:
    expected = sum(p.expected for p in r.phases.values() if p.name != "warm-up")
    got = sum(p.deliveries for p in r.phases.values() if p.name != "warm-up")
    return f"{expected:,} / {got:,}"


def _faults(r: Result) -> str:
    f = r.faults()
    text = f"{f['missing']:,} / {f['duplicates']:,} / {f['out_of_order']:,}"
    if f["unexpected"] or f["closed"]:
        text += f" ({f['unexpected']} unexpected frames, {f['closed']} closed by the server)"
    return text


def _http_errors(r: Result) -> str:
    if not r.http_errors:
        return "0"
    return f"{r.http_errors:,} (server: {r.http_error_sample[:200]})"


def _rss(r: Result) -> str:
    return f"{r.rss_before / KIB:,.1f} → {r.rss_after / KIB:,.1f}"


@dataclass
class Bar:
    what: str
    limit: str
    # One per judged target: the value, the verdict (None: cannot be judged) and, optionally,
    # words that replace the plain verdict.
    values: list[tuple[float, bool | None, str]]


def _bar(
    values: Sequence[float], ok: Callable[[float], bool]
) -> list[tuple[float, bool | None, str]]:
    return [(v, None if math.isnan(v) else ok(v), "") for v in values]


def _loss(r: Result, drain: float) -> tuple[float, bool | None, str]:
    """Zero lost and zero duplicated; undelivered frames are lost or merely late: unsettled."""
    if r.error or not r.phases:
        return math.nan, None, ""
    f = r.faults()
    if f["duplicates"] or f["out_of_order"]:
        return float(f["missing"] + f["duplicates"]), False, ""
    if f["missing"]:
        text = (
            f"{f['missing']:,} **UNSETTLED**: not delivered {drain:.0f} s after the last post "
            "(late or lost; `--drain 400` settles it)"
        )
        return float(f["missing"]), None, text
    return 0.0, True, ""


def bars(
    ours: Sequence[Result], floor: Result | None, naive: Result | None, plan: Any
) -> list[Bar]:
    big, small = plan.big, plan.small

    def ratio(r: Result, peer: Result | None, name: str, what: str) -> float:
        if peer is None:
            return math.nan
        base = peer.ms(name, what, 99)
        return r.ms(name, what, 99) / base if base else math.nan

    result = [
        Bar(
            f"p50 to each follower, {small} followers",
            "≤ 10 ms",
            _bar([r.ms("small", "each", 50) for r in ours], lambda v: v <= 10),
        ),
        Bar(
            f"p99 to each follower, {small} followers",
            "≤ 25 ms",
            _bar([r.ms("small", "each", 99) for r in ours], lambda v: v <= 25),
        ),
        Bar(
            f"p99 to the last follower, {big:,} followers",
            "≤ 200 ms",
            _bar([r.ms("big", "last", 99) for r in ours], lambda v: v <= 200),
        ),
        Bar(
            f"p99 each, {small} followers ÷ bare ASGI floor",
            "≤ 2x",
            _bar([ratio(r, floor, "small", "each") for r in ours], lambda v: v <= 2),
        ),
        Bar(
            f"p99 last, {big:,} followers ÷ bare ASGI floor",
            "≤ 2x",
            _bar([ratio(r, floor, "big", "last") for r in ours], lambda v: v <= 2),
        ),
        Bar(
            f"p99 each, {small} followers ÷ naive Channels",
            "≤ 0.75x",
            _bar([ratio(r, naive, "small", "each") for r in ours], lambda v: v <= 0.75),
        ),
        Bar(
            f"p99 last, {big:,} followers ÷ naive Channels",
            "≤ 0.75x",
            _bar([ratio(r, naive, "big", "last") for r in ours], lambda v: v <= 0.75),
        ),
        Bar(
            "lost + duplicated deliveries, all phases",
            "0",
            [_loss(r, plan.burst_wait + plan.drain) for r in ours],
        ),
        Bar(
            "server memory per idle connection",
            "≤ 64 KiB",
            _bar([r.per_connection_kib(big) for r in ours], lambda v: v <= 64),
        ),
        Bar(
            f"{big:,} connects",
            "≤ 10 s",
            _bar([r.connect_big for r in ours], lambda v: v <= 10),
        ),
        Bar(
            f"after idling past the re-check: p99 to each, {small} followers",
            "≤ 25 ms",
            _bar([r.ms("small-stale", "each", 99) for r in ours], lambda v: v <= 25),
        ),
        Bar(
            f"after idling past the re-check: to the last, {big:,} followers",
            "≤ 200 ms",
            _bar([r.ms("big-stale", "last", 100) for r in ours], lambda v: v <= 200),
        ),
    ]
    return result


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "**MISS**")


def bars_table(ours: Sequence[Result], judged: Sequence[Bar]) -> list[str]:
    header = ["bar (DESIGN.md §7)", "limit", *(r.label for r in ours)]
    rows = []
    for bar in judged:
        cells = []
        for value, ok, text in bar.values:
            digits = 2 if "x" in bar.limit else (0 if bar.limit == "0" else 1)
            unit = "x" if "x" in bar.limit else ""
            cells.append(text or f"{fmt(value, digits)}{unit} {_verdict(ok)}")
        rows.append([bar.what, bar.limit, *cells])
    return _table(header, rows)


def misses(judged: Sequence[Bar], index: int = 0) -> list[str]:
    return [bar.what for bar in judged if bar.values and bar.values[index][1] is False]
