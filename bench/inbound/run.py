"""`python -m bench.inbound [--clients N] [--concurrency N] [--web N] [--tier inbound|web]`: the
inbound email benchmark.

1. A fresh PostgreSQL database (`tidings_inboundbench`), migrated; 200 accounts, each with a web
   domain and a contact, 20 with a logging address; a private Redis database as Celery broker.
2. Production's web processes (`--web` processes of the inbound email tier, uvicorn as
   config.processes.inbound starts it, the clients spread over them as a balancer would;
   `--tier web` posts to daphne instead) and a Celery worker, as subprocesses. TIDINGS_BENCH_DB and
   TIDINGS_BENCH_REDIS_URL choose another database and Redis on a shared machine.
3. 2,000 signed posts to `/integrations/email/inbound/raw/` from N client threads (bench/inbound/
   messages.py: sizes, duplicates, routes); then wait until every stored message is final.
4. Read the outcome from the database: messages per second from the first post to the last
   message on its timeline, p50/p99 from accept to timeline (`received_at` -> `processed_at`),
   match accuracy against the known accounts, duplicate rows and activities.
5. In the same run, the floor: bare standard-library parsing of the same messages in one process
   (`BytesParser(policy=default)`, the body and every attachment decoded).

Results are printed and written to docs/benchmarks-inbound.md with the command that made them.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import psycopg

from bench import notes
from bench.inbound import messages

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
# Overridable so that runs on a shared machine keep to their own database and Redis number.
DB_NAME = os.environ.get("TIDINGS_BENCH_DB", "tidings_inboundbench")
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
REDIS_URL = os.environ.get("TIDINGS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
SECRET = "inbound-bench-secret-not-a-secret-0123456789"  # noqa: S105 - throwaway bench key
SECRET_KEY = "inbound-bench-only-not-a-secret-0123456789abcdefgh"  # noqa: S105
REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DOC = REPO_ROOT / "docs" / "benchmarks-inbound.md"
RATE_BAR = 400.0
RATIO_BAR = 0.5
FINAL = ("processed", "unmatched", "duplicate", "rejected", "failed")


def _env(var_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        DJANGO_SECRET_KEY=SECRET_KEY,
        DJANGO_DEBUG="false",
        TIDINGS_VAR_DIR=str(var_dir),
        TIDINGS_LOG_LEVEL="WARNING",
        TIDINGS_INBOUND_SECRET=SECRET,
        TIDINGS_INBOUND_DOMAIN=messages.INBOUND_DOMAIN,
        TIDINGS_OWN_DOMAINS=messages.OWN_DOMAIN,
        # Generated senders post up to ~40 messages each; the burst guard is not what is measured.
        TIDINGS_INBOUND_BURST_LIMIT="1000",
        # A connection per request thread would exhaust PostgreSQL under a burst (see
        # config/settings.py); production runs the pool the same way.
        TIDINGS_DB_POOL="true",
        PYTHONUNBUFFERED="1",
    )
    return env


def _prepare_database(env: dict[str, str]) -> None:
    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
    )
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def _seed() -> tuple[list[int], dict[int, str]]:
    """Accounts by index and the logging tokens of the first 20, through the project's actions."""
    from crm import actions as crm_actions
    from crm.models import Team, User
    from integrations import actions as inbound_actions

    team = Team.objects.create(name="Bench")
    admin = User.objects.create(username="bench-admin", role="admin", is_superuser=True)
    owner = User.objects.create(username="bench-owner", team=team)
    ids, tokens = [], {}
    for index in range(messages.ACCOUNTS):
        account = crm_actions.create_account(
            actor=admin, name=f"Customer {index}", owner=owner, domains=[messages.domain(index)]
        )
        crm_actions.create_contact(
            actor=admin,
            account=account,
            first_name="Buyer",
            last_name=str(index),
            emails=[messages.contact_address(index)],
        )
        ids.append(account.pk)
        if index < 20:
            address = inbound_actions.create_logging_address(actor=admin, account=account)
            tokens[index] = address.token
    return ids, tokens


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )


def _wait_healthy(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the web process exited:\n{log.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz/")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the web process did not become healthy")


def _post_all(
    ports: list[int], posts: list[bytes], clients: int
) -> tuple[float, list[int], Counter[int]]:
    """Post everything from `clients` threads on keep-alive connections, client i to web
    process i modulo their number (as a balancer spreads connections); (start, ids, codes)."""
    work: Queue[bytes] = Queue()
    for raw in posts:
        work.put(raw)
    ids: list[int] = []
    codes: Counter[int] = Counter()
    lock = threading.Lock()

    def client(port: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            try:
                raw = work.get_nowait()
            except Empty:
                break
            digest = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
            headers = {"X-Tidings-Signature": f"sha256={digest}"}
            # Like a provider: a 5xx or a dropped connection means "try again" (the endpoint
            # answers 5xx only when nothing was stored).
            for attempt in range(10):
                try:
                    conn.request("POST", "/integrations/email/inbound/raw/", raw, headers)
                    response = conn.getresponse()
                    status, body = response.status, response.read()
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    status, body = 0, b""
                with lock:
                    codes[status] += 1
                if status in (200, 202):
                    with lock:
                        ids.append(int(json.loads(body)["id"]))
                    break
                time.sleep(0.05 * (attempt + 1))
        conn.close()

    started = time.time()
    threads = [
        threading.Thread(target=client, args=(ports[i % len(ports)],)) for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return started, ids, codes


def _wait_final(expected: int, worker: subprocess.Popen[bytes], timeout: float = 600) -> None:
    from integrations.models import InboundEmail

    deadline = time.monotonic() + timeout
    while True:
        done = InboundEmail.objects.filter(status__in=FINAL).count()
        if done >= expected:
            return
        if worker.poll() is not None:
            raise RuntimeError("the Celery worker exited")
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {expected} final after {timeout} s")
        time.sleep(0.05)


def _outcome(distinct: list[messages.Generated], account_ids: list[int]) -> dict[str, Any]:
    from django.db.models import Count

    from feed.models import Activity
    from integrations.models import InboundEmail

    rows = list(
        InboundEmail.objects.values_list(
            "message_id", "status", "account_id", "received_at", "processed_at", "matched_by"
        )
    )
    expected = {g.message_id: account_ids[g.account] for g in distinct}
    correct = sum(1 for mid, _s, account, *_ in rows if expected.get(mid) == account)
    latencies = sorted(
        (done - got).total_seconds() * 1000 for _m, _s, _a, got, done, _b in rows if done
    )
    repeated = (
        Activity.objects.filter(kind="email")
        .values("details__message_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    return {
        "rows": len(rows),
        "statuses": dict(Counter(status for _m, status, *_ in rows)),
        "routes": dict(Counter(how for *_, how in rows)),
        "correct": correct,
        "accuracy": correct / len(distinct),
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
        "last_processed": max(r[4] for r in rows if r[4]),
        "duplicate_rows": len(rows) - len({r[0] for r in rows}),
        "duplicate_activities": repeated,
    }


def bare_parse_rate(raws: list[bytes], rounds: int = 3) -> float:
    """The floor: the standard library alone, body and attachments decoded, best of `rounds`."""
    best = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        for raw in raws:
            message = BytesParser(policy=policy.default).parsebytes(raw)
            _ = message["from"], message["to"], message["subject"], message["message-id"]
            body = message.get_body(preferencelist=("plain", "html"))
            if body is not None:
                body.get_content()
            for part in message.iter_attachments():
                part.get_content()
        best = max(best, len(raws) / (time.perf_counter() - started))
    return best


def our_parse_rate(raws: list[bytes]) -> float:
    from integrations.email.parsing import parse_email

    started = time.perf_counter()
    for raw in raws:
        parse_email(raw)
    return len(raws) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="posting threads")
    # Production's worker command names no concurrency: Celery starts one process per CPU.
    parser.add_argument(
        "--concurrency",
        type=int,
        default=os.cpu_count() or 1,
        help="Celery worker processes (default: one per CPU, as production's command gives)",
    )
    parser.add_argument("--web", type=int, default=1, help="web processes (behind a balancer)")
    parser.add_argument(
        "--tier",
        choices=("inbound", "web"),
        default="inbound",
        help="the tier the posts go to: inbound (uvicorn, production's route) or web (daphne)",
    )
    args = parser.parse_args()
    load_before = _load()

    workdir = Path(tempfile.mkdtemp(prefix="tidings-inbound-bench-"))
    (workdir / "var").mkdir()
    env = _env(workdir / "var")
    os.environ.update(env)
    _prepare_database(env)
    import django

    django.setup()
    account_ids, tokens = _seed()
    distinct, posts = messages.generate(tokens)
    raws = [g.raw for g in distinct]
    sizes = Counter(
        "attachment" if len(r) > 100_000 else "medium" if len(r) > 5_000 else "small" for r in raws
    )

    from bench.servers import free_port
    from config.processes import WORKER, inbound, web

    ports = [free_port() for _ in range(args.web)]
    webs = []
    for index, port in enumerate(ports):
        web_argv = (inbound if args.tier == "inbound" else web)("127.0.0.1", port)
        web_argv[0] = str(BIN / web_argv[0])
        webs.append(_start(web_argv, env, workdir / f"web{index}.log"))
    worker_argv = [str(BIN / WORKER[0]), *WORKER[1:], "--concurrency", str(args.concurrency)]
    worker = _start(worker_argv, env, workdir / "worker.log")
    try:
        for index, (port, server) in enumerate(zip(ports, webs, strict=True)):
            _wait_healthy(port, server, workdir / f"web{index}.log")
        time.sleep(2)  # let the worker connect to the broker before the clock starts
        cpu_before = _cpu_by_part(webs, worker)
        started, _ids, codes = _post_all(ports, [p.raw for p in posts], args.clients)
        accepted_at = time.time()
        _wait_final(len(distinct), worker)
        cpu = {
            part: seconds - cpu_before.get(part, 0.0)
            for part, seconds in _cpu_by_part(webs, worker).items()
        }
    finally:
        for process in (*webs, worker):
            process.terminate()
        for process in (*webs, worker):
            process.wait(timeout=30)
    outcome = _outcome(distinct, account_ids)
    elapsed = outcome["last_processed"].timestamp() - started
    rate = len(distinct) / elapsed
    bare = bare_parse_rate(raws)
    ours_parse = our_parse_rate(raws)
    result = {
        "posts": len(posts),
        "distinct": len(distinct),
        "sizes": dict(sizes),
        "codes": dict(codes),
        "accept_rate": len(posts) / (accepted_at - started),
        "rate": rate,
        "elapsed": elapsed,
        "bare_rate": bare,
        "parse_rate": ours_parse,
        "ratio": rate / bare,
        **{k: v for k, v in outcome.items() if k != "last_processed"},
        "cpu_ms": {part: 1000 * seconds / len(distinct) for part, seconds in cpu.items()},
        "args": vars(args),
        "load_before": load_before,
        "load_after": _load(),
    }
    _report(result)
    return 0 if _passed(result) else 1


def _cpu_seconds(pid: int) -> float:
    """User and system CPU of a live process, from /proc (Linux); 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found += [int(child) for child in children]
        todo += [int(child) for child in children]
    return found


def _cpu_by_part(
    webs: list[subprocess.Popen[bytes]], worker: subprocess.Popen[bytes]
) -> dict[str, float]:
    """CPU seconds so far of each part of the run: the web processes, the Celery worker with its
    pool processes, the PostgreSQL backends serving this database, Redis, and this process
    (the posting clients). What every message costs in all, whatever else loads the machine;
    backends that exit during the run are missed (the pools keep theirs)."""
    parts = {
        "web": sum(_cpu_seconds(d.pid) for d in webs),
        "worker": sum(_cpu_seconds(pid) for pid in [worker.pid, *_descendants(worker.pid)]),
        "postgres": 0.0,
        "redis": 0.0,
        "client": sum(os.times()[:2]),
    }
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if command.startswith("postgres:") and f" {DB_NAME} " in command:
            parts["postgres"] += _cpu_seconds(int(entry.name))
        elif "redis-server" in command:
            parts["redis"] += _cpu_seconds(int(entry.name))
    return parts


def _load() -> str:
    """The 1/5/15-minute load averages: the machine is shared, so every figure carries them."""
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def _passed(r: dict[str, Any]) -> bool:
    return (
        r["rate"] >= RATE_BAR
        and r["ratio"] >= RATIO_BAR
        and r["accuracy"] == 1.0
        and r["duplicate_rows"] == 0
        and r["duplicate_activities"] == 0
    )


def _mark(ok: bool) -> str:
    return "pass" if ok else "**MISS**"


def _report(r: dict[str, Any]) -> None:
    command = "python -m bench.inbound " + " ".join(f"--{k} {v}" for k, v in r["args"].items())
    lines = [
        "# Inbound email benchmark",
        "",
        f"Command: `{command}` (also `make bench-inbound`). "
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}: "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, PostgreSQL and Redis local.",
        "The machine is shared with other work; the figures move by ±20 % between runs.",
        "",
        f"{r['posts']} signed posts to `/integrations/email/inbound/raw/` from "
        f"{r['args']['clients']} client threads: {r['distinct']} distinct messages "
        f"({r['sizes']}) and {r['posts'] - r['distinct']} exact duplicates; "
        f"{r['args']['web']} {'uvicorn' if r['args']['tier'] == 'inbound' else 'daphne'} "
        f"process(es) of the {r['args']['tier']} tier and one Celery worker with "
        f"{r['args']['concurrency']} processes, all on this machine. "
        f"Load average before the run: {r['load_before']}, after: {r['load_after']}.",
        "",
        "| measure | value | bar | |",
        "|---|---|---|---|",
        f"| end to end (first post → last message on its timeline) | "
        f"{r['rate']:.0f} msg/s ({r['elapsed']:.1f} s) | ≥ {RATE_BAR:.0f} msg/s | "
        f"{_mark(r['rate'] >= RATE_BAR)} |",
        f"| bare stdlib parsing of the same messages (floor, one process) | "
        f"{r['bare_rate']:.0f} msg/s | | |",
        f"| end to end ÷ bare parsing | {r['ratio']:.2f} | ≥ {RATIO_BAR} | "
        f"{_mark(r['ratio'] >= RATIO_BAR)} |",
        f"| accept → timeline p50 / p99 | {r['p50_ms']:.0f} ms / {r['p99_ms']:.0f} ms | | |",
        f"| match accuracy | {r['correct']}/{r['distinct']} ({r['accuracy']:.1%}) | 100 % | "
        f"{_mark(r['accuracy'] == 1.0)} |",
        f"| duplicate rows / duplicate activities | {r['duplicate_rows']} / "
        f"{r['duplicate_activities']} | 0 | "
        f"{_mark(r['duplicate_rows'] == 0 and r['duplicate_activities'] == 0)} |",
        f"| accept rate (posts answered per second) | {r['accept_rate']:.0f} posts/s | | |",
        f"| our parser alone (`parse_email`, one process) | {r['parse_rate']:.0f} msg/s | | |",
        "",
        f"Answers: {r['codes']}. Final statuses: {r['statuses']}. Matched by: {r['routes']}.",
        "",
        "CPU per distinct message, from the first post until the last is final (ms; Redis is "
        "shared with other work on the machine): "
        + ", ".join(f"{part} {ms:.2f}" for part, ms in r["cpu_ms"].items())
        + f"; in all {sum(r['cpu_ms'].values()):.2f}.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    notes.write(DOC, text)
    # The index keeps the judged rows (those with a bar) and where the rest is.
    header = lines.index("| measure | value | bar | |")
    rows = [line for line in lines[header + 2 :] if line.startswith("| ")]
    judged = lines[header : header + 2] + [row for row in rows if not row.endswith("| | |")]
    notes.summarise(
        "inbound",
        notes.summary(
            "Inbound email (issue 6)",
            f"`{command}`, run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; the whole table, the"
            f" CPU split and the readings: [{DOC.name}]({DOC.name}).",
            judged,
        ),
    )
