"""The worker's batches: one bad message among good ones, concurrent drains, replies inside a
batch, the events of a batch, and the debounced drain request that must strand nothing."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection

from feed.models import Activity
from integrations import actions
from integrations.actions import queueing
from integrations.models import InboundEmail
from realtime.models import Event
from tests import services
from tests.conftest import Cast
from tests.integrations.messages import email

Status = InboundEmail.Status


def _queue(count: int, prefix: str) -> list[int]:
    """`count` messages from the cast's contact, accepted (queued), in order."""
    return [
        actions.accept_inbound_email(
            raw=email(message_id=f"<{prefix}{n}@mail.acme.example>", subject=f"Note {n}")
        ).inbound.pk
        for n in range(count)
    ]


def _drain() -> int:
    """What the drain task does, minus the broker: claim and process until nothing is left."""
    done = 0
    while batch := actions.claim_batch(limit=actions.BATCH_SIZE):
        actions.process_batch(batch)
        done += len(batch)
    return done


def test_an_unreadable_message_fails_alone_and_its_batch_is_processed(cast: Cast) -> None:
    good = _queue(3, "good")
    bad = actions.accept_inbound_email(raw=b"\r\n\r\nno headers at all, only a body").inbound.pk
    good += _queue(2, "later")
    assert _drain() == 6
    assert InboundEmail.objects.get(pk=bad).status == Status.FAILED
    assert InboundEmail.objects.get(pk=bad).reason == "The message has no headers."
    for pk in good:
        stored = InboundEmail.objects.get(pk=pk)
        assert stored.status == Status.PROCESSED and stored.account == cast.account, stored.reason
    assert Activity.objects.filter(kind="email").count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_message_whose_write_fails_fails_alone_and_the_others_are_written(
    cast: Cast,
) -> None:
    """A fault injected in PostgreSQL itself (a trigger refusing one subject): the batch's
    transaction rolls back, the batch is written again message by message, and only the message
    that cannot be written ends failed, with a reason."""
    services.require_postgres()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
            "IF NEW.subject = 'Poison' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; "
            "END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON feed_activity "
            "FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
        )
    try:
        good = _queue(2, "before")
        poison = actions.accept_inbound_email(
            raw=email(message_id="<poison@mail.acme.example>", subject="Poison")
        ).inbound.pk
        good += _queue(2, "after")
        assert _drain() == 5
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse_poison ON feed_activity")
            cursor.execute("DROP FUNCTION refuse_poison()")
    failed = InboundEmail.objects.get(pk=poison)
    assert failed.status == Status.FAILED and failed.reason.startswith("Internal error (")
    assert failed.activity is None
    statuses = set(InboundEmail.objects.filter(pk__in=good).values_list("status", flat=True))
    assert statuses == {Status.PROCESSED}
    assert Activity.objects.filter(kind="email").count() == 4
    # Each email announced once, none for the message that failed.
    assert Event.objects.filter(type="activity.created").count() == 4


@pytest.mark.django_db(transaction=True)
def test_a_batch_whose_write_meets_a_deadlock_goes_back_to_the_queue_at_once(
    cast: Cast,
) -> None:
    """A deadlock (raised by PostgreSQL itself, SQLSTATE 40P01) is no message's fault: the batch
    is handed back, its attempt counted, and the retried drain takes it again at once instead
    of after its lease (the benchmark stranded ~50 messages per deadlock that way)."""
    from django.db import OperationalError

    services.require_postgres()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION fake_deadlock() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; "
            "END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            "CREATE TRIGGER fake_deadlock BEFORE INSERT ON feed_activity "
            "FOR EACH ROW EXECUTE FUNCTION fake_deadlock()"
        )
    try:
        ids = _queue(3, "stuck")
        with pytest.raises(OperationalError):
            actions.process_batch(actions.claim_batch(limit=actions.BATCH_SIZE))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER fake_deadlock ON feed_activity")
            cursor.execute("DROP FUNCTION fake_deadlock()")
    rows = InboundEmail.objects.filter(pk__in=ids)
    assert {(r.status, r.attempts, r.claimed_at) for r in rows} == {(Status.QUEUED, 1, None)}
    assert not Activity.objects.exists()
    assert _drain() == 3
    rows = InboundEmail.objects.filter(pk__in=ids)
    assert {(r.status, r.attempts) for r in rows} == {(Status.PROCESSED, 2)}
    assert Activity.objects.filter(kind="email").count() == 3


@pytest.mark.django_db(transaction=True)
def test_two_drains_at_once_never_process_a_message_twice(cast: Cast, settings: Any) -> None:
    services.require_postgres()
    settings.TIDINGS_INBOUND_BURST_LIMIT = 1000  # one sender, forty messages: not a burst here
    ids = _queue(40, "many")
    start = threading.Barrier(2)
    claimed: list[int] = []

    def drain() -> None:
        try:
            start.wait()
            while batch := actions.claim_batch(limit=5):
                claimed.extend(m.pk for m in batch)
                actions.process_batch(batch)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        for running in [pool.submit(drain) for _ in range(2)]:
            running.result()
    assert sorted(claimed) == sorted(ids)  # every message claimed, none by both
    rows = InboundEmail.objects.filter(pk__in=ids)
    assert {r.status for r in rows} == {Status.PROCESSED}
    assert {r.attempts for r in rows} == {1}
    assert Activity.objects.filter(kind="email").count() == 40
    assert len({r.activity_id for r in rows}) == 40


def test_a_reply_threads_onto_a_message_of_its_own_batch(cast: Cast) -> None:
    first = actions.accept_inbound_email(raw=email(message_id="<root@mail.acme.example>"))
    reply = actions.accept_inbound_email(
        raw=email(
            sender="someone@elsewhere.example",
            message_id="<answer@elsewhere.example>",
            in_reply_to="<root@mail.acme.example>",
        )
    )
    again = actions.accept_inbound_email(
        raw=email(
            sender="other@elsewhere.example",
            message_id="<again@elsewhere.example>",
            in_reply_to="<answer@elsewhere.example>",
        )
    )
    batch = actions.claim_batch(limit=10)
    assert [m.pk for m in batch] == [first.inbound.pk, reply.inbound.pk, again.inbound.pk]
    actions.process_batch(batch)
    root = InboundEmail.objects.get(pk=first.inbound.pk).activity
    for accepted in (reply, again):
        stored = InboundEmail.objects.get(pk=accepted.inbound.pk)
        assert stored.matched_by == "thread" and stored.activity is not None, stored.reason
        # Replies to a reply join the thread of its root.
        assert stored.activity.parent == root


def test_a_reply_to_a_message_another_batch_holds_waits_for_it(cast: Cast) -> None:
    original = actions.accept_inbound_email(raw=email(message_id="<held@mail.acme.example>"))
    held = actions.claim_batch(limit=1)  # another drain has the original, not written yet
    reply = actions.accept_inbound_email(
        raw=email(
            sender="someone@elsewhere.example",
            message_id="<waits@elsewhere.example>",
            in_reply_to="<held@mail.acme.example>",
        )
    )
    deferred = actions.process_batch(actions.claim_batch(limit=10))
    assert deferred == [reply.inbound.pk]
    assert InboundEmail.objects.get(pk=reply.inbound.pk).status == Status.QUEUED
    actions.process_batch(held)
    actions.process_batch(actions.claim_batch(limit=10))  # the next drain takes the reply
    stored = InboundEmail.objects.get(pk=reply.inbound.pk)
    assert stored.matched_by == "thread", stored.reason
    root = InboundEmail.objects.get(pk=original.inbound.pk).activity
    assert stored.activity is not None and stored.activity.parent == root


def test_a_batch_announces_each_email_once_in_order(cast: Cast) -> None:
    ids = _queue(3, "events")
    _drain()
    activities = [InboundEmail.objects.get(pk=pk).activity_id for pk in ids]
    events = list(Event.objects.filter(type="activity.created").order_by("id"))
    assert [e.data["id"] for e in events] == activities
    assert {e.stream for e in events} == {f"account:{cast.account.pk}"}
    # The chain every hub follows: each event names the one committed before it.
    assert [e.prev_id for e in events[1:]] == [e.id for e in events[:-1]]


def _sent_drains() -> int:
    """Drain tasks sent since the last call: taken off the tests' broker (tests/conftest.py
    points Celery at kombu's in-memory transport, whose queues live in the process)."""
    from kombu.transport.memory import Channel

    queue = Channel.queues.get("celery")
    sent = 0
    while queue is not None and not queue.empty():
        sent += queue.get_nowait()["headers"]["task"] == "integrations.tasks.drain_inbound_emails"
    return sent


@pytest.mark.django_db(transaction=True)
def test_a_message_accepted_while_a_drain_runs_is_not_stranded(cast: Cast) -> None:
    """The debounce (on Redis): the first accept sends a drain; accepts before it starts send
    nothing (it will see them); once it started (the flag cleared before its first claim), the
    next accept sends the next drain, which takes everything the first one could not see."""
    services.require_redis()
    client = queueing._redis()
    assert client is not None
    client.delete(queueing.drain_flag())
    _sent_drains()
    _queue(1, "first")
    assert _sent_drains() == 1
    _queue(2, "debounced")
    assert _sent_drains() == 0  # the drain sent has not started: its claims will see them
    assert actions.drain_inbound_emails() == 3  # that drain, run here
    late = _queue(1, "late")  # committed after that drain's last claim
    assert _sent_drains() == 1
    assert actions.drain_inbound_emails() == 1
    assert InboundEmail.objects.get(pk=late[0]).status == Status.PROCESSED
    client.delete(queueing.drain_flag())


@pytest.mark.django_db(transaction=True)
def test_accepts_within_the_gather_window_share_one_drain_request(
    cast: Cast, settings: Any
) -> None:
    """A web process asks Redis once for the accepts of a window, after the last of them
    committed: one drain sent for a burst, and an accept after that check (the drain not yet
    started) sends none, since that drain will see it."""
    services.require_redis()
    client = queueing._redis()
    assert client is not None
    client.delete(queueing.drain_flag())
    _sent_drains()
    settings.TIDINGS_INBOUND_DRAIN_GATHER_SECONDS = 600  # flushed below, never waited out
    queueing._gatherer = None
    try:
        _queue(3, "burst")
        gatherer = queueing._gatherer
        assert gatherer is not None
        assert _sent_drains() == 0 and gatherer.checks == 0  # still gathering
        gatherer.flush()
        assert _sent_drains() == 1 and gatherer.checks == 1
        _queue(1, "after the check")
        gatherer.flush()
        assert _sent_drains() == 0 and gatherer.checks == 2  # the flag says a drain is queued
        assert actions.drain_inbound_emails() == 4
        assert set(InboundEmail.objects.values_list("status", flat=True)) == {Status.PROCESSED}
    finally:
        queueing._gatherer = None
        client.delete(queueing.drain_flag())


@pytest.mark.django_db(transaction=True)
def test_a_drain_that_takes_a_full_batch_asks_for_a_sibling(cast: Cast) -> None:
    """A backlog of more than one batch is worked by several drains at once, not one."""
    client = queueing._redis()
    if client is not None:
        client.delete(queueing.drain_flag())
    _queue(5, "backlog")
    _sent_drains()
    assert actions.drain_inbound_emails(batch_size=2) == 5
    # Asked at each full batch: debounced by the flag with Redis, sent each time without.
    assert _sent_drains() == (1 if client is not None else 2)
    if client is not None:
        client.delete(queueing.drain_flag())


@pytest.mark.django_db(transaction=True)
def test_the_gatherer_asks_for_the_drain_by_itself_after_its_window(
    cast: Cast, settings: Any
) -> None:
    services.require_redis()
    client = queueing._redis()
    assert client is not None
    client.delete(queueing.drain_flag())
    _sent_drains()
    settings.TIDINGS_INBOUND_DRAIN_GATHER_SECONDS = 0.05
    queueing._gatherer = None
    try:
        _queue(2, "windowed")
        gatherer = queueing._gatherer
        assert gatherer is not None
        assert gatherer.checked.wait(timeout=10), "the gathered check never ran"
        assert gatherer.checks == 1 and _sent_drains() == 1
    finally:
        queueing._gatherer = None
        client.delete(queueing.drain_flag())


def test_text_that_looks_like_sql_or_placeholders_is_stored_as_sent(cast: Cast) -> None:
    """The batch's statements bind their values on the server: quotes, backslashes, braces,
    placeholders of either style and non-ASCII text reach the timeline unchanged."""
    body = 'It\'s "fine" \\ {a,b} %s %(x)s $1 ?; DROP TABLE x; -- ☃ Grüße'
    subject = "Re: {\"q\": 'v'} $2 %s"
    pks = [
        actions.accept_inbound_email(
            raw=email(message_id=f"<odd{n}@mail.acme.example>", subject=subject, body=body)
        ).inbound.pk
        for n in range(2)
    ]
    assert _drain() == 2
    for pk in pks:
        stored = InboundEmail.objects.get(pk=pk)
        assert stored.status == Status.PROCESSED, stored.reason
        assert (stored.activity.subject, stored.activity.body) == (subject, body)
        assert stored.subject == subject


def test_a_batch_stores_text_that_arrays_must_escape_as_it_was(cast: Cast) -> None:
    """The batch's bulk INSERTs send one array per column (binary on PostgreSQL): quotes,
    backslashes, braces, commas, the word NULL and non-ASCII text come back unchanged."""
    awkward = [
        'She said "yes", then {no}',
        'C:\\temp\\new \\"quoted\\"',
        "NULL",
        "Zoë — 日本語 , {a,b}",
    ]
    ids = [
        actions.accept_inbound_email(
            raw=email(
                message_id=f"<awkward{n}@mail.acme.example>",
                subject=text,
                body=f"{text}\n\nMaria",
                html=f"<p>{text}</p>",
            )
        ).inbound.pk
        for n, text in enumerate(awkward)
    ]
    assert _drain() == len(awkward)
    for pk, text in zip(ids, awkward, strict=True):
        stored = InboundEmail.objects.get(pk=pk)
        assert stored.status == Status.PROCESSED, stored.reason
        activity = stored.activity
        assert activity is not None
        assert activity.subject == text
        assert activity.body.startswith(text)
        assert activity.details["message_id"] == f"awkward{ids.index(pk)}@mail.acme.example"
        assert stored.reason == "Matched by contact."


def test_a_batch_stops_before_the_message_that_would_pass_its_byte_budget(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim reads its messages' raw bytes at once: it takes messages in order until the next
    would pass BATCH_BYTES (the first always), and the rest wait for the next claim."""
    services.require_postgres()
    from integrations.actions import processing

    ids = _queue(4, "budget")
    sizes = dict(InboundEmail.objects.filter(pk__in=ids).values_list("pk", "size"))
    monkeypatch.setattr(processing, "BATCH_BYTES", sizes[ids[0]] + sizes[ids[1]])
    first = actions.claim_batch(limit=10)
    assert [m.pk for m in first] == ids[:2]
    monkeypatch.setattr(processing, "BATCH_BYTES", 1)
    assert [m.pk for m in actions.claim_batch(limit=10)] == ids[2:3]
    monkeypatch.setattr(processing, "BATCH_BYTES", 10**9)
    assert [m.pk for m in actions.claim_batch(limit=10)] == ids[3:]
    assert actions.claim_batch(limit=10) == []
