"""`python -m bench [--quick]`: the real-time delivery benchmark of DESIGN.md section 7.

For each system under test, in turn and alone on the machine:

1. start it as a subprocess on 127.0.0.1 (daphne with production's command line from
   config.processes.web, or uvicorn), against the benchmark's PostgreSQL database and a flushed
   Redis database; wait for /healthz/;
2. warm up (one follower, five posts), read the server's VmRSS, connect `big` followers with
   pre-issued tickets (timed), wait, read VmRSS again: the difference per connection is the idle
   memory per connection;
3. `big` followers: posts one at a time (each waits until every follower has it, then a short
   pause); for Tidings, a post after idling longer than the consumer's access re-check interval
   (every subscription's verdict is then stale, as on an account that is not posting all the
   time); then a burst of posts back to back; wait for stragglers (`drain`), close;
4. `small` followers, each fetching its ticket over HTTP first (timed): posts one at a time, then
   (Tidings) the post after idling; close; stop the server.

Phases that post one at a time stop early when their time budget is spent, so that a slow system
cannot stretch the run; the report says how many posts each phase measured. The client process
runs with automatic garbage collection off during the phases (collected between them), so that
its own pauses do not show up as delivery latency.

Latency is measured from just before the HTTP POST is written to the moment a follower's `recv()`
returns the frame, on one clock, in this process. Every follower must get every post exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import gc
import importlib.metadata
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bench import env as bench_env
from bench import notes, setup_db
from bench.clients import (
    CONNECT_CONCURRENCY,
    RETRIES,
    Counter,
    Group,
    Http,
    Phase,
    Poster,
    burst,
    close_followers,
    finish,
    open_followers,
    sequential,
)
from bench.report import KIB, Result, bars, bars_table, figures_table, fmt, misses
from bench.servers import (
    REPO_ROOT,
    BenchError,
    Server,
    daphne_argv,
    free_port,
    install_cleanup,
    server_env,
    stop_all,
    uvicorn_argv,
)

DOC = REPO_ROOT / "docs" / "benchmarks.md"


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    server: str  # "daphne" or "uvicorn"
    application: str
    settings: str
    tidings: bool


TARGETS = [
    Target(
        "tidings", "Tidings (daphne)", "daphne", "config.asgi:application", "config.settings", True
    ),
    Target(
        "uvicorn",
        "Tidings (uvicorn)",
        "uvicorn",
        "config.asgi:application",
        "config.settings",
        True,
    ),
    Target(
        "naive",
        "naive Channels (daphne)",
        "daphne",
        "bench.naive_app:application",
        "bench.naive_settings",
        False,
    ),
    Target(
        "bare",
        "bare ASGI floor (daphne)",
        "daphne",
        "bench.bare_app:application",
        "bench.naive_settings",
        False,
    ),
]


@dataclass
class Plan:
    big: int
    small: int
    big_posts: int
    small_posts: int
    burst_posts: int
    stale_posts: int  # posts after idling past the consumer's access re-check (Tidings only)
    budget: float  # seconds a one-at-a-time phase may post for (it stops early past that)
    burst_wait: float  # seconds to wait for a burst's deliveries after its last post
    drain: float  # seconds to wait for stragglers before a group is closed and analysed
    gap: float = 0.02
    stale_idle: float = 0.0  # set at run time: the re-check interval plus half a second
    # The groups of followers to run ("big", "small"); one alone makes a quick A/B of its figures.
    groups: tuple[str, ...] = ("big", "small")

    @classmethod
    def full(cls) -> Plan:
        return cls(
            big=1000, small=100, big_posts=100, small_posts=300, burst_posts=50, stale_posts=1,
            budget=25.0, burst_wait=20.0, drain=10.0,
        )  # fmt: skip

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            big=200, small=100, big_posts=20, small_posts=40, burst_posts=10, stale_posts=0,
            budget=8.0, burst_wait=8.0, drain=4.0,
        )  # fmt: skip


# A re-check interval longer than this is not waited out (the run would take too long).
STALE_IDLE_MAX = 65.0


def raise_open_files_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        new = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < needed:
            print(f"warning: open files limited to {new} (hard limit); need {needed}")


async def run_target(target: Target, server: Server, cast: setup_db.Cast, plan: Plan) -> Result:
    result = Result(target.key, target.label)
    stream = f"account:{cast.account_id}"
    host, port = server.http_base
    http = Http(host, port)
    token = None
    if target.tidings:
        status, answer = await http.request(
            "POST",
            "/api/v1/auth/token/",
            {"username": cast.poster, "password": setup_db.POSTER_PASSWORD},
        )
        if status != 200:
            raise BenchError(f"token: {status} {answer}")
        token = str(answer["token"])
        path = f"/api/v1/accounts/{cast.account_id}/activities/"
    else:
        path = f"/post/{cast.account_id}/"
    poster = Poster(http, path, token)

    async def tickets(count: int) -> list[str | None]:
        if not target.tidings:
            return [None] * count
        issued = await asyncio.to_thread(setup_db.issue_tickets, cast.follower_ids[:count])
        return list(issued)

    async def http_ticket(index: int) -> str | None:
        if not target.tidings:
            return None
        for _attempt in range(RETRIES + 1):
            client = Http(host, port)
            try:
                status, answer = await client.request(
                    "POST", "/api/v1/realtime/ticket/", token=cast.follower_tokens[index]
                )
            finally:
                await client.close()
            if status == 201:
                return str(answer["ticket"])
            result.http_errors += 1
            result.http_error_sample = result.http_error_sample or f"{status}: {str(answer)[:200]}"
            await asyncio.sleep(0.2)
        raise BenchError(f"ticket failed {RETRIES + 1} times: {status} {answer}")

    try:
        # Warm-up: imports, the hub, database connections, the poster's keep-alive connection.
        counter = Counter()
        warm = await open_followers(server.ws_url, stream, counter, 1, tickets=await tickets(1))
        group = Group(warm, counter)
        try:
            await sequential(group, "warm-up", poster, 5, plan.gap, plan.budget)
        finally:
            await finish(group, 5.0)
        await asyncio.sleep(1.0)
        result.rss_before = server.rss_kib()
        if "big" in plan.groups:
            await _run_big(result, server, stream, poster, tickets, plan, target.tidings)
        if "small" in plan.groups:
            await _run_small(result, server, stream, poster, http_ticket, plan, target.tidings)
    finally:
        gc.enable()
        await http.close()
        result.http_errors += poster.errors
        if result.http_errors:
            result.http_error_sample = server.last_exception() or poster.error_sample
    return result


async def _one_at_a_time(
    phases: dict[str, Phase],
    group: Group,
    name: str,
    poster: Poster,
    posts: int,
    plan: Plan,
    tidings: bool,
) -> None:
    """Phase `name`: `posts` posts one at a time; then (Tidings) `name`-stale, the posts after
    idling past the consumer's access re-check."""
    phases[name] = await sequential(group, name, poster, posts, plan.gap, plan.budget)
    if tidings and plan.stale_posts and plan.stale_idle:
        phases[f"{name}-stale"] = await sequential(
            group, f"{name}-stale", poster, plan.stale_posts, 0.0, 0.0, plan.stale_idle
        )


async def _run_big(
    result: Result,
    server: Server,
    stream: str,
    poster: Poster,
    tickets: Callable[[int], Awaitable[list[str | None]]],
    plan: Plan,
    tidings: bool,
) -> None:
    """`plan.big` followers with pre-issued tickets: their connects (timed) and idle memory, posts
    one at a time, (Tidings) the post after idling past the re-check, then a burst."""
    issued = await tickets(plan.big)
    counter = Counter()
    started = time.perf_counter()
    followers = await open_followers(server.ws_url, stream, counter, plan.big, tickets=issued)
    result.connect_big = time.perf_counter() - started
    result.extensions = followers[0].ws.response.headers.get("Sec-WebSocket-Extensions", "")
    print(f"  {plan.big} connected in {result.connect_big:.2f}s", flush=True)
    group = Group(followers, counter)
    phases = result.phases
    try:
        await asyncio.sleep(2.0)
        result.rss_after = server.rss_kib()
        await _one_at_a_time(phases, group, "big", poster, plan.big_posts, plan, tidings)
        # Last, so that a backlog the burst leaves behind spills into no other phase.
        phases["burst"] = await burst(group, "burst", poster, plan.burst_posts, plan.burst_wait)
    except BaseException:
        await close_followers(followers)
        raise
    await finish(group, plan.drain)
    result.add_group(group)
    print(f"  {plan.big} followers: {_line(result, 'big')}", flush=True)
    print(f"  burst: {fmt(phases['burst'].rate, 0)} deliveries/s", flush=True)
    server.check_alive()
    await asyncio.sleep(1.0)


async def _run_small(
    result: Result,
    server: Server,
    stream: str,
    poster: Poster,
    http_ticket: Callable[[int], Awaitable[str | None]],
    plan: Plan,
    tidings: bool,
) -> None:
    """`plan.small` followers, each fetching its ticket over HTTP (timed): posts one at a time,
    then (Tidings) the post after idling past the re-check."""
    counter = Counter()
    started = time.perf_counter()
    followers = await open_followers(
        server.ws_url, stream, counter, plan.small, ticket_source=http_ticket if tidings else None
    )
    result.connect_small = time.perf_counter() - started
    group = Group(followers, counter)
    phases = result.phases
    try:
        await _one_at_a_time(phases, group, "small", poster, plan.small_posts, plan, tidings)
    except BaseException:
        await close_followers(followers)
        raise
    await finish(group, plan.drain)
    result.add_group(group)
    print(f"  {plan.small} followers: {_line(result, 'small')}", flush=True)
    server.check_alive()


def _line(result: Result, name: str) -> str:
    phase = result.phases[name]
    return (
        f"p50 {fmt(result.ms(name, 'each', 50))} ms, p99 {fmt(result.ms(name, 'each', 99))} ms, "
        f"last p99 {fmt(result.ms(name, 'last', 99))} ms, lost {phase.missing}, "
        f"dup {phase.duplicates}"
    )


def _versions() -> str:
    names = ["daphne", "uvicorn", "channels", "channels-redis", "Django", "websockets", "Twisted"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / KIB / KIB:.0f} GiB"
    except OSError:
        pass
    return "?"


def _safe(read: Callable[[], object]) -> str:
    try:
        value = read()
    except Exception:
        return "?"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _code_version() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        return done.stdout.rstrip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    changed = [
        line[3:]
        for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
        if not line[3:].startswith(("bench/", "docs/benchmarks"))
    ]
    if not changed:
        return f"git {head}"
    shown = ", ".join(changed[:8]) + (", ..." if len(changed) > 8 else "")
    return f"git {head} with uncommitted changes to {shown}"


def render(
    results: list[Result], plan: Plan, args: argparse.Namespace, started: dt.datetime, took: float
) -> str:
    by_key = {r.key: r for r in results}
    ours = [r for r in results if r.key in ("tidings", "uvicorn")]
    judged = bars(ours, by_key.get("bare"), by_key.get("naive"), plan)
    command = ".venv/bin/python -m bench" + (" --quick" if args.quick else "")
    lines = [
        "# Benchmarks: real-time delivery",
        "",
        "Written by `make bench` (`" + command + "`); every run overwrites this file. "
        "Method: bench/run.py; bars: DESIGN.md section 7.",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; took {took:.0f} s"
        + (" — **quick run** (fewer followers and posts)" if args.quick else ""),
        f"- machine: {os.cpu_count()} cores ({_cpu_model()}), {_memory_gib()} RAM, "
        f"{platform.system()} {platform.release()}; the server, PostgreSQL, Redis and all clients "
        "share these cores",
        f"- software: Python {platform.python_version()}, {_versions()}, "
        f"PostgreSQL {_safe(setup_db.postgres_version)}, Redis {_safe(setup_db.redis_version)}",
        f"- clients: `websockets` asyncio clients in one process (permessage-deflate offered, "
        f"as browsers do), connecting {CONNECT_CONCURRENCY} at a time; each subscribes to one "
        f"`account:<id>` stream; posts over HTTP/1.1 keep-alive from the same event loop",
        f"- latency: from just before the POST is written to the follower's `recv()`; posts one "
        f"at a time wait until every follower has the post, then pause {plan.gap * 1000:.0f} ms; "
        + (
            f"the stale-verdict post comes after {plan.stale_idle:.1f} s idle (the consumer "
            f"re-checks access older than {plan.stale_idle - 0.5:g} s at delivery)"
            if plan.stale_posts and plan.stale_idle
            else "no stale-verdict post in this run"
        ),
        f"- code: {_code_version()}",
        "- peers: *naive Channels* = bench/naive_app.py (a Django view INSERTs the post, then "
        "`group_send` to `account.<id>` on the default `RedisChannelLayer`; one consumer per "
        "socket in that group; no auth); *bare ASGI floor* = bench/bare_app.py (the POST "
        "handler awaits `send` on every subscribed socket in-process; no database, no Redis); "
        "both served by daphne with production's flags",
        "",
        "## Bars",
        "",
        "Judged on Tidings as deployed (daphne); uvicorn shown for comparison.",
        "",
        *bars_table(ours, judged),
        "",
        "## Figures",
        "",
        *figures_table(results, plan),
        "",
    ]
    missed = misses(judged)
    if ours and missed:
        lines += [f"Missed ({ours[0].label}): " + "; ".join(missed) + ".", ""]
    if args.notes and Path(args.notes).exists():
        lines += [Path(args.notes).read_text().rstrip(), ""]
    return "\n".join(lines)


def dump(results: list[Result], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for result in results:
        for name, phase in result.phases.items():
            with (folder / f"{result.key}-{name}.csv").open("w", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(["sent_s", "reached", "http_ms", "first_ms", "median_ms", "max_ms"])
                for sent, http, reached, first, median, longest in phase.series:
                    times = [f"{value * 1000:.1f}" for value in (http, first, median, longest)]
                    writer.writerow([f"{sent:.3f}", reached, *times])
    print(f"bench: per-post series in {folder}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer followers and posts (smoke)")
    parser.add_argument(
        "--only",
        action="append",
        choices=[t.key for t in TARGETS],
        help="run only these systems (repeatable); skips writing docs/benchmarks.md",
    )
    parser.add_argument(
        "--write-docs",
        choices=["auto", "yes", "no"],
        default="auto",
        help="write docs/benchmarks.md (auto: full runs of every system only)",
    )
    parser.add_argument(
        "--drain",
        type=float,
        help="seconds to wait for undelivered posts before closing a group of followers",
    )
    parser.add_argument(
        "--stale", type=int, help="posts after idling past the access re-check (per group)"
    )
    parser.add_argument(
        "--group",
        action="append",
        choices=["big", "small"],
        help="run only these groups of followers (repeatable; for A/B runs of one group's "
        "figures); skips writing docs/benchmarks.md",
    )
    parser.add_argument("--dump", help="write one CSV per system and phase (per post) here")
    parser.add_argument("--notes", help="a Markdown file appended to the report (analysis)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir and the database")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    plan = Plan.quick() if args.quick else Plan.full()
    if args.drain is not None:
        plan.drain = args.drain
    if args.stale is not None:
        plan.stale_posts = args.stale
    if args.group:
        plan.groups = tuple(args.group)
    targets = [t for t in TARGETS if not args.only or t.key in args.only]
    workdir = bench_env.prepare()
    var_dir = workdir / "var"
    install_cleanup()
    raise_open_files_limit(4 * plan.big + 1024)
    started_at = dt.datetime.now(dt.UTC)
    started = time.monotonic()
    results: list[Result] = []
    try:
        print(f"bench: database {setup_db.DB_NAME}, Redis {setup_db.REDIS_URL}, work dir {workdir}")
        setup_db.recreate_database()
        tidings_env = server_env(
            settings_module="config.settings",
            database_url=setup_db.DATABASE_URL,
            redis_url=setup_db.REDIS_URL,
            var_dir=var_dir,
            secret_key=bench_env.SECRET_KEY,
        )
        setup_db.migrate(tidings_env)
        setup_db.create_naive_table()
        setup_db.configure_django()
        cast = setup_db.seed(max(plan.big, plan.small))
        recheck = setup_db.access_recheck_seconds()
        if recheck + 0.5 <= STALE_IDLE_MAX:
            plan.stale_idle = recheck + 0.5
        else:
            print(f"bench: access re-check every {recheck:g} s: no stale-verdict posts")
        print(f"bench: {len(cast.follower_ids)} followers of account {cast.account_id}")
        for target in targets:
            setup_db.flush_redis()
            port = free_port()
            if target.server == "daphne":
                argv_ = daphne_argv(port, target.application)
            else:
                argv_ = uvicorn_argv(port, target.application)
            env = dict(tidings_env, DJANGO_SETTINGS_MODULE=target.settings)
            server = Server(target.label, argv_, env, port, workdir / f"{target.key}.log")
            shown = " ".join([Path(argv_[0]).name, *argv_[1:]])
            print(f"bench: {target.label}: {shown}", flush=True)
            try:
                server.start()
                results.append(asyncio.run(run_target(target, server, cast, plan)))
            except BenchError as error:
                print(f"bench: {target.label} failed: {error}", file=sys.stderr)
                print(f"server's last error:\n{server.log_errors()}", file=sys.stderr)
                results.append(Result(target.key, target.label, error=str(error).splitlines()[0]))
            except Exception as error:
                traceback.print_exc()
                print(f"server's last error:\n{server.log_errors()}", file=sys.stderr)
                results.append(Result(target.key, target.label, error=repr(error)))
            finally:
                server.stop()
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        stop_all()
        if not args.keep:
            try:
                from django.db import connections

                connections.close_all()
            except Exception:  # noqa: S110 - Django may not be set up yet
                pass
            shutil.rmtree(workdir, ignore_errors=True)
            try:
                setup_db.drop_database()
            except Exception as error:
                print(f"bench: could not drop {setup_db.DB_NAME}: {error}", file=sys.stderr)
    took = time.monotonic() - started
    if args.dump:
        dump(results, Path(args.dump))
    text = render(results, plan, args, started_at, took)
    print()
    print(text)
    write = args.write_docs == "yes" or (
        args.write_docs == "auto" and not args.quick and not args.only and not args.group
    )
    if write:
        notes.write(DOC, text)  # the readings written by hand are kept
        print(f"bench: wrote {DOC.relative_to(REPO_ROOT)}")
    return 1 if any(r.error for r in results) else 0
