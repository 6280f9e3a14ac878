"""Notifications through the real services: daphne, a Celery worker and beat on Redis, and
PostgreSQL, each in its own process as in production.

- A meeting starting soon: beat schedules the reminder job, the worker runs it, the reminder
  reaches the attendee's open WebSocket (`notifications` stream) and the file the email backend
  writes.
- A worker killed (SIGKILL, pool included) in the middle of turning a mention into a
  notification: the transaction dies with it, the sweep works the happening again, and the person
  is told exactly once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.utils import timezone

from feed import actions as feed
from notifications.actions import send_meeting_reminders, set_preferences
from notifications.models import Happening, Notification
from realtime.outbox import SEQUENCER_LOCK_KEY
from tests import servers, services
from tests.conftest import Cast
from tests.service.conftest import Api, Sockets, in_db_thread

pytestmark = pytest.mark.service

# Upper bound for the worker and beat to start and do one round of their jobs. Never waited out
# when things work: the test goes on as soon as the effect is seen.
EFFECT_SECONDS = 60.0


@pytest.fixture
def celery_env(tmp_path: Path) -> dict[str, str]:
    redis_url = services.require_redis()
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    return servers.server_env(
        var_dir,
        database_url=services.database_url_for_subprocess(),
        redis_url=redis_url,
        # Fast rounds so the test is short; the jobs are the production ones.
        TIDINGS_SWEEP_SECONDS="1",
        TIDINGS_EMAIL_BATCH_SECONDS="0",
        TIDINGS_MAIL_DIR=str(tmp_path / "mail"),
    )


@pytest.fixture
def celery(celery_env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    """`celery("worker")` / `celery("beat")` start one; all are stopped when the test ends."""
    servers.purge_broker(celery_env)
    started: list[servers.CeleryProcess] = []

    def start(name: str) -> servers.CeleryProcess:
        process = servers.start_celery(name, celery_env, tmp_path / "logs")
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def wait_for(check: Any, what: str, processes: list[servers.CeleryProcess]) -> Any:
    """Poll `check` (a condition on another process's effect) until it holds."""
    deadline = time.monotonic() + EFFECT_SECONDS
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    logs = "\n".join(f"--- {p.name} ---\n{p.log_tail()}" for p in processes)
    pytest.fail(f"{what} did not happen within {EFFECT_SECONDS:.0f}s\n{logs}")


def _alice_hears_by_email(cast: Cast) -> None:
    cast.owner.email = "alice@tidings.example"
    cast.owner.save(update_fields=["email"])
    set_preferences(user=cast.owner, choices={"meeting_reminder": "email"})


async def test_meeting_reminder_reaches_the_open_socket_and_the_mailbox(
    transactional_db: None,
    cast: Cast,
    live_api: Api,
    sockets: Sockets,
    celery: Any,
    celery_env: dict[str, str],
) -> None:
    await in_db_thread(_alice_hears_by_email, cast)
    alice = await sockets.open(ticket=await live_api.ticket(await live_api.token("alice")))
    subscribed = await alice.subscribe("notifications")
    assert subscribed["type"] == "subscribed", subscribed
    meeting = await in_db_thread(
        feed.log_meeting,
        actor=cast.teammate,
        account=cast.account,
        subject="Pricing review",
        starts_at=timezone.now() + dt.timedelta(minutes=10),
        users=[cast.owner],
    )
    processes = [celery("worker"), celery("beat")]

    frame = await alice.recv(timeout=EFFECT_SECONDS)
    assert frame["type"] == "notification.created", frame
    assert frame["stream"] == "notifications", frame
    assert frame["data"]["kind"] == "meeting_reminder", frame
    assert frame["data"]["activity"] == meeting.pk, frame
    assert "Pricing review" in frame["data"]["title"]
    assert frame["data"]["unread"] == 1

    mail_dir = Path(celery_env["TIDINGS_MAIL_DIR"])

    def written() -> list[str]:
        """Finished emails: the file backend ends each message with a line of 79 dashes, and a
        file may be seen before its message is all written."""
        files = sorted(mail_dir.glob("*.log")) if mail_dir.exists() else []
        texts = [path.read_text() for path in files]
        return texts if texts and all(text.rstrip().endswith("-" * 79) for text in texts) else []

    [email] = await asyncio.to_thread(wait_for, written, "the reminder email", processes)
    assert "To: alice@tidings.example" in email
    assert "Subject: [Tidings] Acme Logistics" in email
    assert "Pricing review" in email
    assert "Content-Type: text/html" in email and "List-Unsubscribe:" in email

    # Another round of the same job (beat keeps running it too) tells nobody twice.
    assert await in_db_thread(send_meeting_reminders, timezone.now()) == 0
    count = await in_db_thread(lambda: Notification.objects.filter(kind="meeting_reminder").count())
    assert count == 1


def _blocked_on_sequencer(dsn: str) -> bool:
    """True when some other session waits for the event-sequencer advisory lock."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND objid = %s",
            [SEQUENCER_LOCK_KEY & 0xFFFFFFFF],
        ).fetchone()
    return bool(row and row[0])


async def test_worker_killed_mid_task_still_tells_exactly_once(
    transactional_db: None,
    cast: Cast,
    live_api: Api,
    sockets: Sockets,
    celery: Any,
) -> None:
    dsn = services.database_url_for_subprocess()
    bob = await live_api.token("bob")
    alice = await sockets.open(ticket=await live_api.ticket(await live_api.token("alice")))
    assert (await alice.subscribe("notifications"))["type"] == "subscribed"
    # The post goes through daphne, which queues the happening's task on Redis after commit.
    post = await live_api.post(bob, cast.account.pk, "@alice can you join the call?")

    # Hold the lock every event writer takes, so the worker's task stops inside its transaction,
    # after it wrote the notification row and before it could commit.
    holder = await asyncio.to_thread(psycopg.connect, dsn, autocommit=True)
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", [SEQUENCER_LOCK_KEY])
        first = celery("worker")
        await asyncio.to_thread(
            wait_for, lambda: _blocked_on_sequencer(dsn), "the task blocking mid-way", [first]
        )
        first.kill()
    finally:
        holder.execute("SELECT pg_advisory_unlock(%s)", [SEQUENCER_LOCK_KEY])
        holder.close()
    assert await in_db_thread(lambda: Notification.objects.count()) == 0  # rolled back

    # A new worker and beat: the sweep works the happening whose task died with the old worker.
    processes = [celery("worker"), celery("beat")]
    frame = await alice.recv(timeout=EFFECT_SECONDS)
    assert frame["type"] == "notification.created", frame
    assert frame["data"]["activity"] == post["id"], frame
    assert frame["data"]["kind"] == "mention", frame

    await in_db_thread(
        wait_for,
        lambda: not Happening.objects.exists(),
        "the happening worked off",
        processes,
    )
    mine = await in_db_thread(
        lambda: list(Notification.objects.values_list("recipient__username", "kind"))
    )
    assert mine == [("alice", "mention")]
    await alice.ping()  # and no second notification.created was pushed before the pong


def _mailed_request(cast: Cast) -> int:
    from tests.integrations.messages import request_by_mail

    return request_by_mail(message_id="<invoices-svc@mail.acme.example>").pk


# What the request page's "reply to the customer" button does, run in a process of its own with
# the deployment's settings (its broker is the worker's Redis; this test process's is in memory).
REPLY_FROM_THE_WEB_SIDE = """
from crm.models import User
from feed.models import Activity
from integrations.support.replies import reply_to_customer
reply = reply_to_customer(
    actor=User.objects.get(pk={actor}), request=Activity.objects.get(pk={request}),
    body="Fixed; please retry.",
)
print(reply.pk)
"""


async def test_reply_to_a_customer_is_sent_by_the_worker(
    transactional_db: None, cast: Cast, celery: Any, celery_env: dict[str, str]
) -> None:
    """Queued on commit through the broker and mailed by a worker, with no sweep running: a task
    Celery refuses to send (soft limit above hard) would leave the customer unanswered."""
    import subprocess
    import sys

    from feed.models import Activity

    request_id = await in_db_thread(_mailed_request, cast)
    code = REPLY_FROM_THE_WEB_SIDE.format(actor=cast.support.pk, request=request_id)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "manage.py", "shell", "-c", code],
        env=celery_env,
        capture_output=True,
        text=True,
        timeout=EFFECT_SECONDS,
    )
    assert done.returncode == 0, done.stderr
    assert "not queued" not in done.stderr, done.stderr
    reply_id = int(done.stdout.split()[-1])
    worker = celery("worker")
    mail_dir = Path(celery_env["TIDINGS_MAIL_DIR"])

    def sent() -> str:
        files = sorted(mail_dir.glob("*.log")) if mail_dir.exists() else []
        texts = [path.read_text() for path in files]
        finished = [text for text in texts if text.rstrip().endswith("-" * 79)]
        return finished[0] if finished else ""

    email = await asyncio.to_thread(wait_for, sent, "the reply email", [worker])
    assert "To: maria@acme.example" in email and "Fixed; please retry." in email

    # The worker writes the mail, then commits `sent_at` in its transaction: await that commit.
    def recorded() -> bool:
        return Activity.objects.get(pk=reply_id).details["sent_at"] is not None

    assert await in_db_thread(wait_for, recorded, "the reply's sent_at", [worker])
