"""Model instances from hand-written SQL, built the way the ORM builds them.

The feed's page queries are written by hand (`feed.queries`): on a page of 25 threads Django's
query compiler, `select_related` and `prefetch_related` machinery cost several times what
PostgreSQL spends answering (docs/benchmarks-feed.md). `crm.sqlrows.ModelColumns` is the other
half: the select list of one model under a table alias, and the conversion of that run of a result
row into an instance with the database converters the ORM would apply (JSON, SQLite datetimes, ...).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model, QuerySet

from crm.models import Account, User
from crm.sqlrows import JoinedColumns, ModelColumns, columns_of
from feed.models import Activity

M = TypeVar("M", bound=Model)


def set_prefetched(instance: Model, name: str, model: type[M], related: list[M]) -> None:
    """Make `instance.<name>.all()` answer `related` without a query, as `prefetch_related` does."""
    cached: QuerySet[M] = QuerySet(model=model)
    cached._result_cache = related
    cached._prefetch_done = True  # type: ignore[attr-defined]
    if not hasattr(instance, "_prefetched_objects_cache"):
        instance._prefetched_objects_cache = {}  # type: ignore[attr-defined]
    instance._prefetched_objects_cache[name] = cached  # type: ignore[attr-defined]


# What pages show of an author or assignee (the JSON's person, templates' names and team); the
# password hash and login dates are not read, so not loaded.
PERSON_FIELDS = (
    "username",
    "first_name",
    "last_name",
    "email",
    "role",
    "team_id",
    "is_active",
    "is_staff",
    "is_superuser",
)


class ActivityColumns:
    """An activity under alias `a` with its author `au` and assignee `aa` joined in, and
    optionally its account `ac` and parent `ap` (for pages that show where a row comes from)."""

    JOINS = (
        "LEFT JOIN crm_user au ON au.id = a.author_id"
        " LEFT JOIN crm_user aa ON aa.id = a.assignee_id"
    )

    def __init__(self, connection: BaseDatabaseWrapper, *, with_context: bool = False) -> None:
        related: list[tuple[str, ModelColumns[Any]]] = [
            ("author", columns_of(User, "au", connection, PERSON_FIELDS)),
            ("assignee", columns_of(User, "aa", connection, PERSON_FIELDS)),
        ]
        joins = [self.JOINS]
        if with_context:
            related += [
                ("account", columns_of(Account, "ac", connection)),
                ("parent", columns_of(Activity, "ap", connection)),
            ]
            joins += [
                "JOIN crm_account ac ON ac.id = a.account_id",
                "LEFT JOIN feed_activity ap ON ap.id = a.parent_id",
            ]
        self.columns = JoinedColumns(columns_of(Activity, "a", connection), related)
        self.select = self.columns.select
        self.joins = " ".join(joins)

    def load(self, row: Sequence[Any]) -> Activity:
        activity = self.columns.load(row)
        if activity is None:
            raise ValueError("a row without an activity")
        return activity


# --- Page JSON written by PostgreSQL ------------------------------------------------------------
#
# On the API's timeline and home pages, turning rows into Python values (psycopg parsing ~60
# datetimes a page), dicts (`activity_json`) and then JSON (DRF's renderer) was about two thirds
# of the measured call for a 25-thread page (docs/benchmarks-feed.md). So each activity's JSON
# text is PostgreSQL's, byte for byte what `feed.serializers.activity_json` and DRF's JSONRenderer
# make of it (compact separators, UTF-8, ISO 8601 with "Z"); Python only joins the texts. Its head
# (`{"id":` to `"queue"`) is written once, by triggers, into `feed_activity.rendered` (migration
# feed 0010, which holds its SQL): writing it on every page was ~0.2 ms of a 0.7 ms timeline page.
# The page adds what a stored text cannot hold: `is_overdue`, which depends on the time of the
# read, and the jsonb fields (details, reactions), re-encoded in Python when not empty because
# PostgreSQL prints jsonb with spaces after its separators; almost every row has `{}` there.

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# The stored head's `is_overdue`, and what an overdue row's says. Only the head's own key can
# match: a `"` inside a JSON string is escaped, so `,"is_overdue":` appears once, at the top level.
_NOT_OVERDUE = ',"is_overdue":false,'
_OVERDUE = ',"is_overdue":true,'


@dataclass(slots=True)
class ActivityJSON:
    """One activity of a page as its JSON text, with what the page needs to order and cut it."""

    pk: int
    parent_id: int | None
    # Microseconds since the epoch: psycopg's (and Django's) loading of a timestamptz cost ~12 %
    # of a timeline page's call, for values used only to order the rows and write the cursor.
    occurred_us: int
    text: str
    replies: list[ActivityJSON] | None = None  # a timeline's thread root: its live replies

    @property
    def occurred_at(self) -> dt.datetime:
        return _EPOCH + dt.timedelta(microseconds=self.occurred_us)

    def thread_text(self) -> str:
        """The JSON of a timeline's thread: the activity with `"replies": [...]` last."""
        replies = ",".join(reply.text for reply in self.replies or ())
        return f'{self.text[:-1]},"replies":[{replies}]}}'


def _compact_json(text: str) -> tuple[str, Any]:
    """jsonb text as DRF's JSONRenderer writes the value (and the value)."""
    value = json.loads(text)
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")), value


class ActivityJSONColumns:
    """`ActivityColumns`' counterpart that PostgreSQL turns into JSON: the same alias `a` (no
    joins: the people are in the stored head). `select` holds one placeholder, `now` (the time
    `is_overdue` is judged at): `params(now)` gives its value, to be put where the select list
    sits among the statement's parameters."""

    joins = ""

    def __init__(self, *, now: str = "%s") -> None:
        request, resolved = Activity.Kind.REQUEST, "resolved"
        overdue = (
            f"a.due_at IS NOT NULL AND a.done_at IS NULL"
            f" AND NOT (a.kind = '{request}' AND a.status = '{resolved}') AND a.due_at < {now}"
        )
        # Spliced here rather than in Python: one column fewer for psycopg to read on every row,
        # and only the few rows with a due time get as far as `replace`.
        head = (
            f"CASE WHEN {overdue} THEN replace(a.rendered, '{_NOT_OVERDUE}', '{_OVERDUE}')"
            " ELSE a.rendered END"
        )
        self.select = (
            "a.id, a.parent_id, (extract(epoch FROM a.occurred_at) * 1000000)::bigint, a.kind,"
            f" {head} || ',\"details\":', a.details::text, a.reaction_summary::text"
        )

    @staticmethod
    def params(now: dt.datetime) -> list[Any]:
        """The select list's values, in their order (the time)."""
        return [now]

    def load(self, row: Sequence[Any]) -> ActivityJSON:
        pk, parent_id, occurred_us, kind, head, details, reactions = row
        internal = False
        if details != "{}":
            details, value = _compact_json(details)
            # activity_json's "internal": a comment that is an internal note on a request.
            internal = kind == Activity.Kind.COMMENT and bool(value.get("internal"))
        if reactions != "{}":
            reactions = _compact_json(reactions)[0]
        tail = "true}" if internal else "false}"
        text = f'{head}{details},"reactions":{reactions},"internal":{tail}'
        return ActivityJSON(pk, parent_id, occurred_us, text)


def page_body(texts: Iterable[str], next_cursor: str | None) -> bytes:
    """`{"results": [...], "next": ...}` as DRF's JSONRenderer writes it (it escapes U+2028 and
    U+2029, which PostgreSQL leaves as they are)."""
    cursor = "null" if next_cursor is None else json.dumps(next_cursor)
    body = f'{{"results":[{",".join(texts)}],"next":{cursor}}}'
    if "\u2028" in body or "\u2029" in body:
        body = body.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return body.encode()
