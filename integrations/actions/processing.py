"""Processing queued inbound email in batches: claim, parse, match, post, record.

A drain (`drain_inbound_emails`, run by the Celery task of the same name) claims up to
`BATCH_SIZE` queued messages at once, parses them, reads what matching needs for the whole batch
with one query per rule, and writes the activities, their attachments, events and happenings and
the messages' final statuses in one transaction. Measured on the benchmark's mail, one message at a
time cost ~14 SQL round trips and ~14 ms of CPU, most of it the ORM building one statement after
another (docs/benchmarks-inbound.md); a batch shares all of that.

What the batch must not cost, and how it is kept:
- Exactly once: a claim takes rows with `FOR UPDATE SKIP LOCKED` and leases them (`claimed_at`),
  so two drains never hold the same message; the writing transaction locks the rows again and
  writes only those still queued (a re-run from triage racing a drain).
- One bad message never fails its neighbours: an unreadable one ends `failed` in the same batch;
  if writing the batch raises, it is written again one message per transaction, so only the one
  that raises ends `failed` ("Internal error"). A message that took its worker down (its claim
  counted, its lease ran out) is claimed again alone, never in a batch, so it cannot take a batch
  down with it twice; after `MAX_ATTEMPTS` it is given up.
- Time limits: the Celery task's soft limit interrupts parsing; the message being parsed then ends
  `failed` (too slow), the batch's unparsed messages are handed back to the queue and the parsed
  ones are written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from crm.models import Account
from feed import actions as feed_actions
from feed.models import Activity
from integrations.actions import queueing
from integrations.actions.mail import (
    PROCESSED_FIELDS,
    attachment_rows,
    email_details,
    is_special,
    post_to_timeline,
    record_headers,
)
from integrations.email.matching import (
    Lookups,
    Match,
    answers_in_flight,
    load_lookups,
    match_email,
)
from integrations.email.parsing import ParsedEmail, UnreadableEmail, parse_email
from integrations.models import InboundAttachment, InboundEmail

log = logging.getLogger(__name__)
Status = InboundEmail.Status
# Measured in-process on the benchmark's mail (docs/benchmarks-inbound.md): a batch costs ~20 ms
# of CPU whatever its size (a dozen statements built by the ORM, the lookups, the events, the
# notification task and its own dozen): batches of 10 against 100 cost 4.3 against 2.0 ms per
# message, notifications included, so 50 a batch paid ~0.5 ms each for it and 100 pay half when
# the queue is long enough to fill them; 200 saved nothing more. A batch never holds more than
# BATCH_BYTES of raw mail (see claim_batch).
BATCH_SIZE = 100
BATCH_BYTES = 64 * 1024 * 1024
# A message that took its worker down this many times is given up, not retried forever.
MAX_ATTEMPTS = 3
# Longer than the task's hard time limit (integrations/tasks.py): a run still inside its lease
# may still be working.
CLAIM_LEASE = dt.timedelta(minutes=2)
# A drain stops taking batches after this long and queues its successor, so that one task stays
# far inside its time limit however long the queue is.
DRAIN_SECONDS = 20.0
WRITTEN_FIELDS = [*PROCESSED_FIELDS, "account", "matched_by"]
# The database is away or the write met a deadlock (not a bad message): the batch is handed
# back to the queue (`_hand_back`) and the task retries.
DATABASE_AWAY = (OperationalError, InterfaceError)


@dataclass
class Item:
    """One claimed message on its way through a batch."""

    inbound: InboundEmail
    parsed: ParsedEmail | None = None
    status: str = ""
    reason: str = ""
    # Answers a message another batch holds: handed back to wait for it (see `_decide`), once.
    may_defer: bool = False
    is_deferred: bool = False


def drain_inbound_emails(*, batch_size: int = BATCH_SIZE) -> int:
    """Process queued messages batch by batch until none is left (or `DRAIN_SECONDS` passed,
    then another drain is queued); answers how many were claimed."""
    queueing.drain_started()
    started, done, deferred = time.monotonic(), 0, set[int]()
    while time.monotonic() - started < DRAIN_SECONDS:
        # Fresh messages in batches; one that was claimed before and never finished, alone.
        batch = claim_batch(limit=batch_size, exclude=deferred) or claim_batch(
            limit=1, is_retry=True, exclude=deferred
        )
        if not batch:
            if deferred:
                queueing.request_drain()  # the next drain takes the replies that waited
            return done
        if len(batch) == batch_size:
            # More may be waiting than one batch: ask for a sibling drain, so that a backlog is
            # worked by every worker process and not by this one alone while the others idle
            # (in the benchmark, once the burst of accepts ended no accept asked for drains any
            # more and the tail of the queue went to one drain at a time).
            queueing.request_drain()
        deferred.update(process_batch(batch))
        done += len(batch)
    queueing.send_drain()
    return done


def process_inbound_email(*, inbound_id: int) -> InboundEmail | None:
    """Process one queued message now (a batch of one: `ingest_mail --now`, tests).

    Idempotent: a message that is not queued, or is leased to a run still within its time limit,
    is left alone and returned as it is."""
    claimed = claim_batch(limit=1, inbound_id=inbound_id)
    if claimed:
        process_batch(claimed, may_defer=False)
    return InboundEmail.objects.defer("raw").filter(pk=inbound_id).first()


def claim_batch(
    *,
    limit: int,
    is_retry: bool = False,
    inbound_id: int | None = None,
    exclude: set[int] = frozenset(),  # type: ignore[assignment]
) -> list[InboundEmail]:
    """Lease up to `limit` queued messages (autocommitted, so an attempt counts even if the
    worker dies), raw bytes included, in id order, leaving out the ids in `exclude`."""
    now = timezone.now()
    if connection.vendor != "postgresql":
        return _claim_one_by_one(now, limit, is_retry, inbound_id, exclude)
    table = InboundEmail._meta.db_table
    which = "id = %(id)s" if inbound_id is not None else _RETRIED if is_retry else _FRESH
    # Skipping locked rows lets concurrent drains take disjoint batches without waiting. The
    # batch stops before the message that would take its raw bytes past BATCH_BYTES (the first
    # is always taken): the claim reads them all into the worker's memory at once. Rows locked
    # but not leased are free again when this statement commits.
    sql = f"""
        WITH candidates AS (
            SELECT id, size FROM {table}
            WHERE status = 'queued' AND (claimed_at IS NULL OR claimed_at < %(expired)s)
              AND {which} AND NOT (id = ANY(%(exclude)s))
            ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED),
        within AS (
            SELECT id, sum(size) OVER (ORDER BY id) - size AS before FROM candidates)
        UPDATE {table} SET attempts = attempts + 1, claimed_at = %(now)s
        WHERE id IN (SELECT id FROM within WHERE before < %(budget)s)
        RETURNING *"""  # noqa: S608 - the table and condition are ours, the values parameters
    params = {
        "now": now,
        "expired": now - CLAIM_LEASE,
        "limit": limit,
        "id": inbound_id,
        "exclude": sorted(exclude),
        "budget": BATCH_BYTES,
    }
    return sorted(InboundEmail.objects.raw(sql, params), key=lambda inbound: inbound.pk)


# Fresh, or handed back uncounted-as-a-crash (a deferred reply: claimed once, lease cleared).
_FRESH = "(attempts = 0 OR (attempts = 1 AND claimed_at IS NULL))"
# Claimed before and never finished: the worker may have died of it, so it goes alone.
_RETRIED = "attempts > 0"


def _claim_one_by_one(
    now: dt.datetime, limit: int, is_retry: bool, inbound_id: int | None, exclude: set[int]
) -> list[InboundEmail]:
    """SQLite (the embedded default, one writer at a time): read candidates, lease each."""
    free = Q(status=Status.QUEUED) & (
        Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_LEASE)
    )
    if inbound_id is not None:
        candidates = InboundEmail.objects.filter(free, pk=inbound_id)
    elif is_retry:
        candidates = InboundEmail.objects.filter(free, attempts__gt=0)
    else:
        fresh = Q(attempts=0) | Q(attempts=1, claimed_at__isnull=True)
        candidates = InboundEmail.objects.filter(free, fresh)
    candidates = candidates.exclude(pk__in=exclude)
    ids = list(candidates.order_by("pk").values_list("pk", flat=True)[:limit])
    won = [
        pk
        for pk in ids
        if InboundEmail.objects.filter(free, pk=pk).update(
            attempts=F("attempts") + 1, claimed_at=now
        )
    ]
    return list(InboundEmail.objects.filter(pk__in=won).order_by("pk"))


def process_batch(claimed: list[InboundEmail], *, may_defer: bool = True) -> list[int]:
    """Parse and write a claimed batch; every message ends final or back in the queue (answered:
    the replies deferred until the batch holding their original is written)."""
    items = [Item(inbound) for inbound in claimed]
    for item in items:
        if item.inbound.attempts > MAX_ATTEMPTS:
            item.status, item.reason = Status.FAILED, f"Gave up after {MAX_ATTEMPTS} attempts."
    for item in items:
        item.may_defer = may_defer and item.inbound.attempts <= 1
    try:
        _parse_all(items)
    finally:
        # Also when the time limit struck while parsing: what was parsed is written.
        _write_isolated([i for i in items if i.parsed is not None or i.status])
    deferred = [i.inbound.pk for i in items if i.is_deferred]
    if deferred:
        # Counted (a second claim no longer defers) and free to claim again at once.
        InboundEmail.objects.filter(pk__in=deferred, status=Status.QUEUED).update(claimed_at=None)
    return deferred


def _parse_all(items: list[Item]) -> None:
    for index, item in enumerate(items):
        if item.status:
            continue
        try:
            item.parsed = parse_email(item.inbound.raw_bytes)
        except UnreadableEmail as error:
            item.status, item.reason = Status.FAILED, str(error)
        except SoftTimeLimitExceeded:
            item.status, item.reason = Status.FAILED, "Processing took too long."
            _release([i.inbound.pk for i in items[index + 1 :] if not i.status])
            raise
        except Exception as error:
            log.exception("inbound #%s could not be parsed", item.inbound.pk)
            item.status, item.reason = Status.FAILED, f"Internal error ({type(error).__name__})."


def _release(ids: list[int]) -> None:
    """Hand claimed messages back to the queue uncounted: the next drain takes them."""
    if ids:
        InboundEmail.objects.filter(pk__in=ids, status=Status.QUEUED).update(
            claimed_at=None, attempts=F("attempts") - 1
        )


def _hand_back(ids: list[int]) -> None:
    """After a transient database error (a deadlock, a failover) rolled the write back: the
    messages go back to the queue at once, their attempt counted (so one that always meets the
    error is given up after MAX_ATTEMPTS), instead of waiting out their lease for the sweeper.
    The retried drain then claims them again; if the database is really away, this fails too
    and the leases keep them, as before."""
    try:
        InboundEmail.objects.filter(pk__in=ids, status=Status.QUEUED).update(claimed_at=None)
    except DATABASE_AWAY:
        log.warning("could not hand back %s inbound messages; their leases will run out", len(ids))


def _write_isolated(items: list[Item]) -> None:
    """Write the batch in one transaction; if that raises, each message in its own, so that
    only the message that raises ends failed."""
    if not items:
        return
    try:
        _write(items)
        return
    except DATABASE_AWAY:
        _hand_back([i.inbound.pk for i in items])
        raise
    except SoftTimeLimitExceeded:
        _release([i.inbound.pk for i in items])  # rolled back: the next drain does them again
        raise
    except Exception as error:
        if len(items) == 1:
            _fail_on_error(items[0], error)
            return
        log.warning("an inbound batch of %s failed; writing its messages one by one", len(items))
    for index, item in enumerate(items):
        try:
            _write([item])
        except DATABASE_AWAY:
            _hand_back([i.inbound.pk for i in items[index:]])
            raise
        except SoftTimeLimitExceeded:
            # Out of time: not this message's fault. It and the rest go back to the queue.
            _release([i.inbound.pk for i in items[index:]])
            raise
        except Exception as error:
            _fail_on_error(item, error)


def _fail_on_error(item: Item, error: Exception) -> None:
    # A bug must not leave the message queued forever; the raw bytes stay, so it can be re-run
    # once fixed. Never log the body.
    log.error("inbound #%s failed", item.inbound.pk, exc_info=error)
    item.parsed = None
    item.status, item.reason = Status.FAILED, f"Internal error ({type(error).__name__})."
    _write([item])


@contextlib.contextmanager
def _bound_on_server() -> Iterator[None]:
    """Run the ORM's statements with their values bound on the server, arrays in binary.

    Django binds on the client by default: psycopg then quotes every value into the SQL text in
    Python, and a batch's bulk INSERTs (activities with their bodies and details, their events,
    happenings) pass arrays of them, each element escaped twice (~0.3 ms of CPU per message,
    measured around a drain of 600). Only the cursor class changes: the statements are the
    same, and PostgreSQL receives the values apart (as `_insert_once` and `_save_outcomes`
    already send theirs). See `_binary_arrays` for the arrays."""
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    raw = connection.connection
    previous = raw.cursor_factory
    raw.cursor_factory = _batch_cursor_class()
    try:
        yield
    finally:
        raw.cursor_factory = previous


def _binary_arrays(cursor: psycopg.Cursor[Any]) -> None:
    """Send the lists `cursor` binds as binary arrays.

    Django's bulk INSERT passes one array per column (`UNNEST(%s::text[], ...)`). In psycopg's
    text format every element that needs quoting goes through a regular expression substitution
    with a template, once per quote or backslash in it, and the JSON of each activity's details
    is full of quotes: measured at ~0.3 ms of CPU per message (a third of the batch's write).
    The binary format sends each element's bytes with its length, nothing escaped. The columns
    are cast in the statements (`::bigint[]`, `::jsonb[]`), so the typed arrays (int8[], text[])
    convert the same way the untyped text did."""
    from psycopg.types.array import ListBinaryDumper

    # Registered last, the binary dumper is the one `%s` uses (psycopg's AdaptersMap).
    cursor.adapters.register_dumper(list, ListBinaryDumper)


@functools.cache
def _batch_cursor_class() -> type[psycopg.Cursor[Any]]:
    from django.db.backends.postgresql.base import (  # type: ignore[attr-defined]
        ServerBindingCursor,
    )

    class BatchCursor(ServerBindingCursor):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            _binary_arrays(self)

    return BatchCursor  # type: ignore[no-any-return]


def _write(items: list[Item]) -> None:
    """Decide and post what was parsed, record every final status: one transaction."""
    with _bound_on_server(), transaction.atomic():
        _write_in_transaction(items)


def _write_in_transaction(items: list[Item]) -> None:
    ids = [i.inbound.pk for i in items]
    # Locked again, and only what is still queued is written (a triage re-run may have raced).
    queued = set(
        InboundEmail.objects.select_for_update()
        .filter(pk__in=ids, status=Status.QUEUED)
        .values_list("pk", flat=True)
    )
    items = [i for i in items if i.inbound.pk in queued]
    postings = _decide(items)
    _post(postings)
    items = [i for i in items if not i.is_deferred]
    now = timezone.now()
    for item in items:
        inbound = item.inbound
        inbound.status, inbound.reason, inbound.processed_at = item.status, item.reason[:300], now
    for posting in postings:
        posting.inbound.account = posting.account
        posting.inbound.matched_by = posting.match.matched_by
    _save_outcomes([i.inbound for i in items])


def _save_outcomes(rows: list[InboundEmail]) -> None:
    """UPDATE the processed fields of `rows` in one statement.

    On PostgreSQL from one array per column (`unnest`): Django's bulk_update builds a CASE
    expression per field and row, and measured at ~12 ms of CPU per message it cost more than
    parsing the message."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        InboundEmail.objects.bulk_update(rows, WRITTEN_FIELDS)
        return
    fields = [f for f in InboundEmail._meta.concrete_fields if f.name in WRITTEN_FIELDS]
    columns = [str(f.column) for f in fields]
    types = [_ARRAY_TYPES[f.get_internal_type()] for f in fields]
    values = [
        [f.get_db_prep_save(getattr(row, f.attname), connection) for row in rows] for f in fields
    ]
    table = InboundEmail._meta.db_table
    assignments = ", ".join(f"{c} = v.{c}" for c in columns)
    arrays = ", ".join(f"%s::{t}[]" for t in ["bigint", *types])
    sql = (
        f"UPDATE {table} AS t SET {assignments} "  # noqa: S608 - names are ours, values params
        f"FROM unnest({arrays}) AS v(id, {', '.join(columns)}) WHERE t.id = v.id"
    )
    # Bound on the server: Django's client-side binding quotes every array element in Python,
    # which measured ~1.4 ms of CPU per message here.
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        _binary_arrays(cursor)
        cursor.execute(sql, [[row.pk for row in rows], *values])


# PostgreSQL element types of the columns `_save_outcomes` writes.
_ARRAY_TYPES = {
    "CharField": "text",
    "TextField": "text",
    "BooleanField": "boolean",
    "DateTimeField": "timestamptz",
    "ForeignKey": "bigint",
}


@dataclass
class Posting:
    """A message matched to an account: what goes on its timeline."""

    inbound: InboundEmail
    parsed: ParsedEmail
    match: Match
    account: Account


def _decide(items: list[Item]) -> list[Posting]:
    """The status of each parsed message, with the rows matching needs read for all at once;
    answers those to post. From scratch each time: a batch that raised is decided again message
    by message."""
    parsed = [(i, i.parsed) for i in items if i.parsed is not None]
    for item, message in parsed:
        item.status, item.reason = "", ""
        item.inbound.activity, item.inbound.account, item.inbound.matched_by = None, None, ""
        record_headers(item.inbound, message)
    bursting = _bursting([i.inbound for i, _ in parsed])
    duplicates = _duplicates_of(parsed)
    lookups = load_lookups([message for _, message in parsed])
    earlier: dict[str, Match] = {}
    postings = []
    for item, message in parsed:
        # A reply whose original is in a batch still being written waits for that batch (the
        # drain that holds the original claims again after it commits) instead of missing its
        # thread; the original ends final whatever happens, so the wait is bounded.
        item.is_deferred = item.may_defer and answers_in_flight(message, lookups, earlier)
        if item.is_deferred:
            continue
        match = _verdict(item, message, bursting, duplicates, lookups, earlier)
        if match is not None and match.account is not None:
            postings.append(Posting(item.inbound, message, match, match.account))
            if message.message_id:
                earlier[message.message_id] = match
    return postings


def _verdict(
    item: Item,
    parsed: ParsedEmail,
    bursting: set[int],
    duplicates: dict[str, int],
    lookups: Lookups,
    earlier: dict[str, Match],
) -> Match | None:
    """The status a message deserves before it goes anywhere near a timeline (on `item`), and
    where it goes when it goes to one."""
    inbound = item.inbound
    if parsed.auto_reason:
        item.status, item.reason = Status.REJECTED, parsed.auto_reason.capitalize() + "."
    elif inbound.pk in bursting:
        inbound.is_auto = True
        limit = settings.TIDINGS_INBOUND_BURST_LIMIT
        minutes = settings.TIDINGS_INBOUND_BURST_MINUTES
        item.status = Status.REJECTED
        item.reason = f"Burst: over {limit} messages in {minutes} min from sender."
    elif parsed.message_id in duplicates and parsed.message_id != inbound.message_id:
        original = duplicates[parsed.message_id]
        item.status, item.reason = Status.DUPLICATE, f"Same Message-ID as inbound #{original}."
    else:
        match = match_email(parsed, lookups, earlier)
        if match.account is None:
            item.status, item.reason = Status.UNMATCHED, match.reason
            return None
        item.status, item.reason = Status.PROCESSED, f"Matched by {match.matched_by}."
        return match
    return None


def _bursting(batch: list[InboundEmail]) -> set[int]:
    """The messages of `batch` whose sender sent over the burst limit within the window before
    each (counting what is stored and the batch's earlier messages)."""
    limit = settings.TIDINGS_INBOUND_BURST_LIMIT
    window = dt.timedelta(minutes=settings.TIDINGS_INBOUND_BURST_MINUTES)
    senders = {m.from_address for m in batch if m.from_address}
    if not senders:
        return set()
    stored = InboundEmail.objects.filter(
        from_address__in=senders,
        received_at__gte=min(m.received_at for m in batch) - window,
        received_at__lte=max(m.received_at for m in batch),
    ).exclude(pk__in=[m.pk for m in batch])
    # A coarse count first: only a sender near the limit needs each message's own window.
    coarse = dict(stored.values_list("from_address").annotate(n=Count("id")))
    in_batch = Counter(m.from_address for m in batch)
    near = {s for s in senders if coarse.get(s, 0) + in_batch[s] > limit}
    if not near:
        return set()
    times = list(stored.filter(from_address__in=near).values_list("from_address", "received_at"))
    bursting, seen = set(), list[InboundEmail]()
    for message in batch:
        if message.from_address in near:
            since = message.received_at - window
            earlier = [t for s, t in times if s == message.from_address]
            earlier += [m.received_at for m in seen if m.from_address == message.from_address]
            if sum(since <= t <= message.received_at for t in earlier) >= limit:
                bursting.add(message.pk)
        seen.append(message)
    return bursting


def _duplicates_of(parsed: list[tuple[Item, ParsedEmail]]) -> dict[str, int]:
    """Stored messages whose Message-ID is one that parsing found where the accept's cheap look
    at the headers did not (then the unique index could not catch it): id -> first row."""
    ids = {
        message.message_id
        for item, message in parsed
        if message.message_id and message.message_id != item.inbound.message_id
    }
    if not ids:
        return {}
    rows = InboundEmail.objects.filter(message_id__in=ids).order_by("-pk")
    return dict(rows.values_list("message_id", "pk"))


def _post(postings: list[Posting]) -> None:
    """The activities of the matched messages: those that start or join a stored thread first,
    then replies to messages of this batch (whose activities then exist)."""
    posted: dict[str, Activity] = {}
    first = [p for p in postings if not p.match.thread_of]
    _post_generation(first, posted)
    _post_generation([p for p in postings if p.match.thread_of], posted)


def _post_generation(postings: list[Posting], posted: dict[str, Activity]) -> None:
    plain = [p for p in postings if not is_special(p.parsed)]
    attachments = _store_attachments([p for p in plain if p.parsed.attachments])
    emails = []
    for p in plain:
        contact = p.match.contact
        emails.append(
            feed_actions.NewEmail(
                account=p.account,
                subject=p.parsed.subject,
                body=p.parsed.new_text,
                details=email_details(p.inbound, p.parsed, attachments.get(p.inbound.pk, [])),
                occurred_at=p.parsed.date or p.inbound.received_at,
                parent=p.match.parent or posted.get(p.match.thread_of),
                contact=contact if contact and contact.account_id == p.account.pk else None,
            )
        )
    # Most batches have no second generation: no empty INSERT of account touches for it.
    logged = feed_actions.log_emails(emails) if emails else []
    for posting, activity in zip(plain, logged, strict=True):
        _posted(posting, activity, posted)
    for p in postings:
        if is_special(p.parsed):
            match = replace(p.match, parent=p.match.parent or posted.get(p.match.thread_of))
            _posted(p, post_to_timeline(p.inbound, p.parsed, p.account, match), posted)


def _posted(posting: Posting, activity: Activity, posted: dict[str, Activity]) -> None:
    posting.inbound.activity = activity
    if posting.parsed.message_id:
        posted[posting.parsed.message_id] = activity


def _store_attachments(postings: list[Posting]) -> dict[int, list[InboundAttachment]]:
    """Every attachment of the batch: files written, rows inserted at once."""
    rows = [row for p in postings for row in attachment_rows(p.inbound, p.parsed)]
    stored: dict[int, list[InboundAttachment]] = {}
    for row in InboundAttachment.objects.bulk_create(rows):
        stored.setdefault(row.inbound_id, []).append(row)
    return stored
