"""Inbound email through the real stack: both web tiers, a Celery worker, Redis and PostgreSQL.

A burst of signed raw messages, some posted twice at the same moment, goes to
`/integrations/email/inbound/raw/` of the inbound tier (uvicorn, as in production: the balancer
sends that route there) while the sockets are on daphne; a real `celery worker` on a private Redis
processes them. Each message must end once on the right timeline (or in triage), and arrive live
on a socket subscribed to the account. Waiting is polling of the status API with a deadline.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import json
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake

from feed.models import Activity
from integrations.models import InboundEmail, LoggingAddress
from tests import servers
from tests.conftest import Cast
from tests.integrations.messages import email
from tests.servers import WebServer
from tests.service.conftest import Api, Sockets, StartServer, in_db_thread, service_env

pytestmark = pytest.mark.service

SECRET = "service-test-inbound-secret-0123456789"
DEADLINE_SECONDS = 90.0
FINAL = {"processed", "unmatched", "duplicate", "rejected", "failed"}


@dataclass
class Stack:
    web: WebServer
    inbound: WebServer
    worker: subprocess.Popen[bytes]
    worker_log: Path


@pytest.fixture
def inbound_stack(
    transactional_db: None, cast: Cast, tmp_path: Path, start_server: StartServer
) -> Iterator[Stack]:
    extra = {
        "TIDINGS_INBOUND_SECRET": SECRET,
        "TIDINGS_INBOUND_DOMAIN": "inbound.tidings.example",
        "TIDINGS_OWN_DOMAINS": "tidings.example",
    }
    with servers.running_redis(tmp_path / "redis") as redis:
        web = start_server("web", redis_url=redis.url(), **extra)
        inbound = start_server("inbound", redis_url=redis.url(), tier="inbound", **extra)
        var_dir = tmp_path / "worker" / "var"
        var_dir.mkdir(parents=True)
        env = service_env(var_dir, redis.url(), **extra)
        log = tmp_path / "worker" / "celery.log"
        celery = Path(servers.web_argv("127.0.0.1", 1)[0]).with_name("celery")
        with log.open("wb") as out:
            worker = subprocess.Popen(
                [str(celery), "-A", "config", "worker", "--concurrency", "2", "-l", "INFO"],
                cwd=servers.REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            yield Stack(web, inbound, worker, log)
        finally:
            servers.stop_process(worker)


def _post(web: WebServer, raw: bytes) -> tuple[int, dict[str, Any]]:
    digest = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    conn = http.client.HTTPConnection(web.host, web.port, timeout=30)
    try:
        conn.request(
            "POST",
            "/integrations/email/inbound/raw/",
            body=raw,
            headers={"X-Tidings-Signature": f"sha256={digest}", "Content-Type": "message/rfc822"},
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _await_final(api: Api, token: str, ids: set[int], stack: Stack) -> dict[int, dict[str, Any]]:
    """Poll the status API until every message is final; fail with the worker's log at the
    deadline (or at once if the worker died)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    final: dict[int, dict[str, Any]] = {}
    while True:
        for inbound_id in sorted(ids - set(final)):
            reply = api.request(
                "GET", f"/api/v1/integrations/inbound-emails/{inbound_id}/", token=token
            )
            assert reply.status == 200, reply
            if reply.body["status"] in FINAL:
                final[inbound_id] = reply.body
        if len(final) == len(ids):
            return final
        log = servers._tail(stack.worker_log, 40)
        assert stack.worker.poll() is None, f"the worker died:\n{log}"
        assert time.monotonic() < deadline, f"still queued: {sorted(ids - set(final))}\n{log}"
        # The pause between two polls of the status API (not a synchronisation: the loop is).
        time.sleep(0.2)


async def test_a_burst_with_concurrent_duplicates_lands_once_each_and_live(
    cast: Cast, inbound_stack: Stack
) -> None:
    web = inbound_stack.web
    api = Api(web)
    logging_address = await in_db_thread(LoggingAddress.objects.create, account=cast.west_account)
    acme = [
        email(subject=f"Acme #{n}", message_id=f"<acme{n}@mail.acme.example>") for n in range(12)
    ]
    west = [
        email(
            sender="ops@westwind.example",
            cc=logging_address.address,
            subject=f"West #{n}",
            message_id=f"<west{n}@westwind.example>",
        )
        for n in range(4)
    ]
    unknown = [
        email(
            sender="who@nowhere.example",
            subject=f"Unknown #{n}",
            message_id=f"<u{n}@nowhere.example>",
        )
        for n in range(4)
    ]
    distinct = acme + west + unknown
    # Every fifth message is posted twice, both copies at once.
    burst = distinct + distinct[::5]

    admin_token = await api.token("admin")
    alice_token = await api.token("alice")
    sockets = Sockets(web)
    try:
        alice = await sockets.open(ticket=await api.ticket(alice_token))
        stream = f"account:{cast.account.pk}"
        assert (await alice.subscribe(stream))["type"] == "subscribed"

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = await asyncio.to_thread(
                lambda: list(pool.map(lambda r: _post(inbound_stack.inbound, r), burst))
            )
        codes = [code for code, _ in answers]
        assert codes.count(202) == len(distinct) and codes.count(200) == len(distinct[::5]), answers
        ids = {body["id"] for _, body in answers}
        assert len(ids) == len(distinct)

        final = await asyncio.to_thread(_await_final, api, admin_token, ids, inbound_stack)
        statuses = sorted(body["status"] for body in final.values())
        assert statuses == ["processed"] * 16 + ["unmatched"] * 4, final

        # Live: alice's socket receives each Acme email once.
        subjects: list[str] = []
        while len(subjects) < len(acme):
            event = await alice.recv()
            if event.get("type") == "activity.created" and event["data"]["kind"] == "email":
                subjects.append(event["data"]["subject"])
        assert sorted(subjects) == sorted(f"Acme #{n}" for n in range(12))
        await alice.ping()  # nothing else (no second copy) was queued before the pong
    finally:
        await sockets.close_all()

    def timelines() -> tuple[list[str], list[str], int]:
        acme_subjects = list(
            Activity.objects.filter(account=cast.account, kind="email").values_list(
                "subject", flat=True
            )
        )
        west_subjects = list(
            Activity.objects.filter(account=cast.west_account, kind="email").values_list(
                "subject", flat=True
            )
        )
        return acme_subjects, west_subjects, InboundEmail.objects.count()

    acme_subjects, west_subjects, stored = await in_db_thread(timelines)
    assert sorted(acme_subjects) == sorted(f"Acme #{n}" for n in range(12))
    assert sorted(west_subjects) == sorted(f"West #{n}" for n in range(4))
    assert stored == len(distinct)


async def test_the_inbound_tier_serves_no_websockets(inbound_stack: Stack) -> None:
    """WebSockets belong to daphne (`web`); a handshake that reaches the inbound tier by
    mistake is refused instead of opening a socket there."""
    with pytest.raises(InvalidHandshake):
        async with connect(inbound_stack.inbound.ws_url, open_timeout=10):
            pass
