"""The statement that finds a page of a home feed on PostgreSQL (`feed.queries.home_feed`).

A home feed merges many timelines: every followed account (or only the kinds chosen for it),
followed threads, minus muted threads. Filtering one scan of all activity by "is it wanted" costs
in proportion to how rare wanted rows are: a user following only quiet accounts made PostgreSQL
read a million rows for a deep page (docs/benchmarks-feed.md). So the page is found one of two
ways, each bounded:

- `seek`: the newest `n` rows below the cursor of each followed account (of each (account, kind)
  when the follow chose kinds) and of the followed threads, each from its own index range
  (feed_live_timeline, feed_timeline_kind, the primary key, feed_thread_replies), then merged.
  It costs one short index range per follow, however old the rows are: right for quiet feeds and
  for the usual few dozen follows.
- `walk`: the newest `WALK_WINDOW` live rows of all accounts (an index-only scan of
  feed_live_recent), keeping the wanted ones. If that finds `n`, they are the page (any newer wanted
  row would be inside the window). A user following hundreds of accounts is answered from a few
  hundred index entries this way, where `seek` would read `n` rows of each of them. When the
  window finds fewer than `n`, `seek` runs instead (a one-time filter on the walk's count), so
  the walk is only tried when the follows are many (`WALK_FROM_FOLLOWS`).

Only the terms that apply are written (no kinds, no threads, no mutes: no text for them), which
keeps planning, a large part of the cost of a page, short.

Both take what the user follows from `feed.queries._home_sources`, a query of its own. For a user
known to follow many accounts, `self_contained_walk_statement` is the walk alone with the follows
read inside the statement (`feed.queries` keeps who is known to; it is a guess about speed, never
about what the page holds): one query a page where the two others take two.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

WALK_WINDOW = 2000
WALK_FROM_FOLLOWS = 100


@dataclass
class HomeWanted:
    """What a user's home feed is made of (`feed.queries._home_sources`)."""

    every_kind: list[int]  # visible followed accounts, all kinds
    some_kinds: dict[int, list[str]]  # visible followed accounts -> the kinds chosen
    threads: list[int]  # followed (not muted) threads on visible accounts (their roots' ids)
    thread_accounts: list[int]  # the accounts of those threads
    muted: list[int]  # muted threads, wherever they are
    # `crm.visibility.visible_accounts_sql` of the user: the page keeps rows of the followed
    # accounts (every_kind, some_kinds) it selects; on PostgreSQL, None only when there are none.
    visible: tuple[str, tuple[Any, ...]] | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.every_kind or self.some_kinds or self.threads)

    @property
    def walks_first(self) -> bool:
        """Whether the page is looked for by the walk first (many follows) or by the seeks only."""
        follows = len(self.every_kind) + sum(len(kinds) for kinds in self.some_kinds.values())
        return follows >= WALK_FROM_FOLLOWS


@dataclass
class Statement:
    sql: str
    params: dict[str, Any] = field(default_factory=dict)


def home_page_statement(
    wanted: HomeWanted, *, at: dt.datetime | None, pk: int | None, n: int
) -> Statement:
    """SELECT id, occurred_at of the first `n` wanted live rows below the cursor (at, pk), newest
    first (no cursor: from the newest)."""
    pairs = [(account, kind) for account, kinds in wanted.some_kinds.items() for kind in kinds]
    # Arrays go as array literals: psycopg would adapt a list element by element, once per
    # placeholder, which for 500 follows cost more than planning the statement.
    params: dict[str, Any] = {
        "at": at,
        "pk": pk,
        "window": WALK_WINDOW,
        "every": _array(wanted.every_kind),
        "picky": _array(list(wanted.some_kinds)),
        "pairs": _array([f"{account}:{kind}" for account, kind in pairs]),
        "pair_accounts": _array([account for account, _ in pairs]),
        "pair_kinds": _array([kind for _, kind in pairs]),
        "threads": _array(wanted.threads),
        "thread_accounts": _array(wanted.thread_accounts),
        "muted": _array(wanted.muted),
    }
    if (wanted.every_kind or pairs) and wanted.visible is None:
        raise ValueError("followed accounts without the visibility policy's SQL")
    seen = _visibility_probe(wanted.visible, params) if wanted.visible is not None else ""
    below = " AND (x.occurred_at, x.id) < (%(at)s, %(pk)s)" if at is not None else ""
    live = f"x.deleted_at IS NULL{below}"
    if wanted.muted:
        live += (
            " AND NOT (x.id = ANY(%(muted)s::bigint[])"
            " OR coalesce(x.parent_id, 0) = ANY(%(muted)s::bigint[]))"
        )
    # The page size is written into the text (it is part of the shape: the API's is fixed), not
    # a parameter: with LIMIT $n a generic plan guesses a tenth of the rows, and the walk's
    # policy-first filter (below) then looked like thousands of rows, which planned hash joins
    # of every user and JIT compilation (45 ms) for a page of 26.
    n = int(n)
    newest = f"ORDER BY x.occurred_at DESC, x.id DESC LIMIT {n}"
    seeks = []
    if wanted.every_kind:
        seeks.append(
            "SELECT s.id, s.occurred_at FROM unnest(%(every)s::bigint[]) f(account_id)"  # noqa: S608 -- fixed text; values are parameters
            f" CROSS JOIN LATERAL (SELECT x.id, x.occurred_at FROM feed_activity x"
            f" WHERE x.account_id = f.account_id AND {live} {newest}) s"
            f" WHERE {seen.format(account='f.account_id')}"
        )
    if pairs:
        seeks.append(
            "SELECT s.id, s.occurred_at"  # noqa: S608 -- fixed text; values are parameters
            " FROM unnest(%(pair_accounts)s::bigint[], %(pair_kinds)s::text[]) f(account_id, kind)"
            " CROSS JOIN LATERAL (SELECT x.id, x.occurred_at FROM feed_activity x"
            f" WHERE x.account_id = f.account_id AND x.kind = f.kind AND {live} {newest}) s"
            f" WHERE {seen.format(account='f.account_id')}"
        )
    if wanted.threads:
        in_thread = f"x.account_id = ANY(%(thread_accounts)s::bigint[]) AND {live}"
        seeks.append(
            "SELECT x.id, x.occurred_at FROM feed_activity x"  # noqa: S608 -- fixed text; values are parameters
            f" WHERE x.id = ANY(%(threads)s::bigint[]) AND {in_thread}"
        )
        seeks.append(  # the newest replies of each followed thread (feed_thread_replies, backwards)
            "SELECT s.id, s.occurred_at FROM unnest(%(threads)s::bigint[]) t(id)"  # noqa: S608 -- fixed text; values are parameters
            " CROSS JOIN LATERAL (SELECT x.id, x.occurred_at FROM feed_activity x"
            f" WHERE x.parent_id = t.id AND {in_thread} {newest}) s"
        )
    # UNION, not UNION ALL: a reply in a followed thread on a followed account is reached twice.
    merged = " UNION ".join(seeks)
    if not wanted.walks_first:
        sql = f"SELECT id, occurred_at FROM ({merged}) s {newest.replace('x.', '')}"  # noqa: S608 -- fixed text; values are parameters
        return Statement(sql, params)
    followed = []
    if wanted.every_kind:
        followed.append("x.account_id = ANY(%(every)s::bigint[])")
    if pairs:
        followed.append(
            "(x.account_id = ANY(%(picky)s::bigint[])"
            " AND x.account_id::text || ':' || x.kind = ANY(%(pairs)s::text[]))"
        )
    terms = []
    if followed:
        # The policy first, then the follows: a prepared statement's arrays are parameters, which
        # PostgreSQL searches element by element (it hashes only constant arrays), ~3 us a row
        # for 500 follows against ~1 us for the policy's probe of the primary key, which leaves
        # a fifth of the rows here; the 500-follows user's walk took 0.43 ms, now ~0.2. CASE
        # fixes the order: PostgreSQL would otherwise run the cheaper-looking array test first.
        terms.append(
            f"CASE WHEN {seen.format(account='x.account_id')} THEN ({' OR '.join(followed)})"
            " ELSE false END"
        )
    if wanted.threads:
        terms.append(
            "((x.id = ANY(%(threads)s::bigint[]) OR x.parent_id = ANY(%(threads)s::bigint[]))"
            " AND x.account_id = ANY(%(thread_accounts)s::bigint[]))"
        )
    window = (
        "SELECT x.id, x.occurred_at, x.account_id, x.kind, x.parent_id FROM feed_activity x"  # noqa: S608 -- fixed text; values are parameters
        f" WHERE {live} ORDER BY x.occurred_at DESC, x.id DESC LIMIT %(window)s"
    )
    sql = (
        f"WITH walk AS (SELECT x.id, x.occurred_at FROM ({window}) x"  # noqa: S608 -- fixed text; values are parameters
        f" WHERE {' OR '.join(terms)} {newest}) "
        f"SELECT id, occurred_at FROM walk WHERE (SELECT count(*) FROM walk) = {n} "
        f"UNION ALL (SELECT id, occurred_at FROM ({merged}) s"
        f" WHERE (SELECT count(*) FROM walk) < {n} {newest.replace('x.', '')})"
    )
    return Statement(sql, params)


def _one_line(sql: str) -> str:
    """`sql` written over several lines here, as one (the text is the prepared statement's key,
    and psycopg caches the parsing of texts up to 4 KiB only)."""
    return " ".join(line.strip() for line in sql.strip().splitlines())


# What a user follows, read by the statement itself: `feed.queries._SOURCES_SQL` as sets that
# PostgreSQL hashes once per statement (hashed subplans; a few dozen microseconds for 500 follows)
# and probes for each row of the walk. Follow rows without kinds (or with an empty list) want
# every kind of their account, the others the kinds listed (those are found by the partial index
# feed_follow_picky, whose condition is written here as Django writes it: reading every Follow
# row's kinds was ~60 us for 500 follows); an owned or account-team account
# without a Follow row wants every kind; a followed thread counts when its account is visible; a
# muted thread is left out wherever it is.
_FOLLOWED_ROW = _one_line("""
((x.account_id IN (SELECT f.account_id FROM feed_follow f WHERE f.user_id = %(user)s)
  AND x.account_id NOT IN (SELECT f.account_id FROM feed_follow f WHERE f.user_id = %(user)s
    AND NOT (f.kinds = '[]'::jsonb) AND jsonb_typeof(f.kinds) = 'array'))
 OR (x.account_id, x.kind) IN (SELECT f.account_id, k.kind FROM feed_follow f CROSS JOIN LATERAL
    jsonb_array_elements_text(CASE WHEN jsonb_typeof(f.kinds) = 'array' THEN f.kinds END) k(kind)
    WHERE f.user_id = %(user)s AND NOT (f.kinds = '[]'::jsonb))
 OR (x.account_id IN (SELECT o.id FROM crm_account o WHERE o.owner_id = %(user)s
        UNION ALL SELECT t.account_id FROM crm_accountteammember t WHERE t.user_id = %(user)s)
     AND x.account_id NOT IN (SELECT f.account_id FROM feed_follow f WHERE f.user_id = %(user)s)))
""")
_IN_FOLLOWED_THREAD = _one_line("""
((x.id IN (SELECT thread_id FROM threads) OR x.parent_id IN (SELECT thread_id FROM threads))
 AND x.account_id IN (SELECT account_id FROM threads))
""")
_MUTED = (
    "SELECT m.thread_id FROM feed_threadsubscription m WHERE m.user_id = %(user)s AND m.is_muted"
)


def self_contained_walk_statement(
    user_pk: int,
    visible: tuple[str, tuple[Any, ...]],
    *,
    at: dt.datetime | None,
    pk: int | None,
    n: int,
) -> Statement:
    """SELECT id, occurred_at of the first `n` rows the user wants among the newest `WALK_WINDOW`
    live rows below the cursor (at, pk), newest first; `visible` is the user's
    `crm.visibility.visible_accounts_sql`. The same rows as `home_page_statement` when it finds
    `n` of them; fewer means the window did not hold the page, and the caller must ask
    `home_page_statement`."""
    params: dict[str, Any] = {"user": user_pk, "at": at, "pk": pk, "window": WALK_WINDOW}
    seen = _visibility_probe(visible, params)
    below = " AND (x.occurred_at, x.id) < (%(at)s, %(pk)s)" if at is not None else ""
    n = int(n)  # written into the text, as in `home_page_statement`
    threads = (
        "threads AS MATERIALIZED (SELECT s.thread_id, t.account_id"  # noqa: S608 -- fixed text; values are parameters
        " FROM feed_threadsubscription s JOIN feed_activity t ON t.id = s.thread_id"
        f" WHERE s.user_id = %(user)s AND NOT s.is_muted AND {seen.format(account='t.account_id')})"
    )
    window = (
        "SELECT x.id, x.occurred_at, x.account_id, x.kind, x.parent_id FROM feed_activity x"  # noqa: S608 -- fixed text; values are parameters
        f" WHERE x.deleted_at IS NULL{below} ORDER BY x.occurred_at DESC, x.id DESC"
        " LIMIT %(window)s"
    )
    # The follows first, then the policy: the sets are hashed, so testing a row against them is
    # cheaper than the policy's probe of the primary key, which only the followed rows then pay.
    sql = (
        f"WITH {threads} SELECT x.id, x.occurred_at FROM ({window}) x"  # noqa: S608 -- fixed text; values are parameters
        f" WHERE NOT (x.id IN ({_MUTED}) OR coalesce(x.parent_id, 0) IN ({_MUTED}))"
        f" AND (CASE WHEN {_FOLLOWED_ROW} THEN {seen.format(account='x.account_id')}"
        f" ELSE false END OR {_IN_FOLLOWED_THREAD})"
        f" ORDER BY x.occurred_at DESC, x.id DESC LIMIT {n}"
    )
    return Statement(sql, params)


def _visibility_probe(visible: tuple[str, tuple[Any, ...]], params: dict[str, Any]) -> str:
    """A test of whether the user may see `{account}`: the policy's own SQL (`visible`, with its
    positional parameters renamed into `params`) as a scalar subquery on that one account, which
    PostgreSQL answers with one probe of the primary key (where `IN` would make it list every
    visible account). A `str.format` template with the field `account`."""
    sql, values = visible
    numbers = itertools.count()

    def rename(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%%"
        number = next(numbers)
        params[f"visible_{number}"] = values[number]
        return f"%(visible_{number})s"

    named = re.sub(r"%%|%s", rename, sql).replace("{", "{{").replace("}", "}}")
    return f"(SELECT v.pk FROM ({named}) v WHERE v.pk = {{account}}) IS NOT NULL"  # noqa: S608 -- the ORM's SQL; values are parameters


def _array(values: list[int] | list[str]) -> str:
    """A PostgreSQL array literal of `values` (elements quoted, as text arrays need; ids need no
    quoting, and quoting 500 of them was a tenth of the page's Python time)."""
    if all(type(v) is int for v in values):
        return "{" + ",".join(map(str, values)) + "}"
    quoted = ('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"
