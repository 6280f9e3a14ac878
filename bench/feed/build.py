"""The data set of DESIGN.md section 7, built with bulk SQL in a database of its own.

`tidings_feedbench` (or `$TIDINGS_FEEDBENCH_DB`) is created afresh and migrated with
`manage.py migrate` under `bench.feed.peer_settings` (Tidings' apps plus actstream), then filled
with INSERT ... SELECT over generate_series (no ORM, no row-at-a-time work): secondary indexes
are dropped during the load and rebuilt after it, foreign-key triggers are off for the load
(`session_replication_role = replica`; the generator only writes ids that exist; the trigger
that writes each activity's JSON head still fires), then VACUUMed and ANALYZEd table by table
with a larger sample than the default (`analyze`). A marker row records the data set's version
and counts; a later run reuses the database while the marker and the counts match.

The shape (deterministic: `setseed`):

- 5 teams; 1,000 reps (users 1..1000, team = (id - 1) % 5 + 1), 5 owners (1001..1005, one per
  team, owning that team's accounts), the quiet-follows user (1006) and the 500-follows user (1007),
  both reps in team 1. Reps see their team's accounts (crm.visibility), so every follow is inside
  the follower's team.
- 10,000 accounts, team = (id - 1) % 5 + 1: ids 1..100 are hot (50 % of all activity, ~5,000 each),
  101..2000 warm (40 %, ~210 each), 2001..10000 quiet (10 %, ~12 each).
- 1,000,000 activities over one year, newest last; kinds post, call, email, meeting, task, and
  ~10 % comments, each a reply to the latest thread root before it on the same account.
- Follows: each rep follows 2 hot, 18 warm and 30 quiet accounts of their team (50); the quiet user
  follows 50 quiet accounts; the 500 user follows all 20 hot, 180 warm and 300 quiet accounts of
  team 1.
- The same rows for django-activity-stream: one Action per activity (actor = the author, verb =
  the kind, target = the account, timestamp = occurred_at, description = the body) and one actstream
  Follow per follow, with `actor_only=False` (the documented way to see actions whose *target* is
  the followed object in `user_stream`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from tqdm import tqdm

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
# TIDINGS_FEEDBENCH_DB names another database, for a branch whose schema differs from main's: two
# checkouts sharing one name would rebuild it (~40 s) at every switch of an A/B comparison.
DB_NAME = os.environ.get("TIDINGS_FEEDBENCH_DB", "tidings_feedbench")
DATABASE_URL = f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{DB_NAME}"
REPO_ROOT = Path(__file__).resolve().parents[2]

DATASET_VERSION = "feed-1"
TEAMS = 5
REPS = 1000
ACCOUNTS = 10_000
HOT = 100  # account ids 1..HOT
WARM_END = 2000  # account ids HOT+1..WARM_END are warm, the rest quiet
ACTIVITIES = 1_000_000
CHUNK = 100_000
OWNER_BASE = REPS  # owner of team t is user OWNER_BASE + t
QUIET_USER = REPS + TEAMS + 1
BIG_USER = REPS + TEAMS + 2
TYPICAL_USER = 1  # a rep of team 1, following 50 accounts
HOT_ACCOUNT = 1  # the hottest account, team 1

EXPECTED = {
    "crm_user": REPS + TEAMS + 2,
    "crm_account": ACCOUNTS,
    "feed_activity": ACTIVITIES,
    "feed_follow": REPS * 50 + 50 + 500,
    "actstream_action": ACTIVITIES,
    "actstream_follow": REPS * 50 + 50 + 500,
}


@dataclass
class Built:
    reused: bool
    seconds: float
    counts: dict[str, int]


def _connect(dbname: str) -> psycopg.Connection[Any]:
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, autocommit=True)


def _existing_counts() -> dict[str, int] | None:
    """The counts of a built data set of this version, or None."""
    try:
        conn = _connect(DB_NAME)
    except psycopg.OperationalError:
        return None
    with conn:
        try:
            row = conn.execute("SELECT version FROM bench_feed_marker").fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        if not row or row[0] != DATASET_VERSION:
            return None
        counts = {}
        for table in EXPECTED:
            counted = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
            counts[table] = int(counted[0]) if counted else 0
    return counts


def _manage_migrate(*flags: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=DATABASE_URL,
        DJANGO_SETTINGS_MODULE="bench.feed.peer_settings",
        TIDINGS_LOG_LEVEL="WARNING",
    )
    return subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0", *flags],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _migrate() -> None:
    done = _manage_migrate()
    if done.returncode != 0:
        raise RuntimeError(f"manage.py migrate failed:\n{done.stdout}\n{done.stderr}")


def _is_schema_current() -> bool:
    """Whether the data set has every migration of this code. The counts alone do not tell: a
    data set built before a new column or index would be reused and measure the old schema (or
    fail on the new column)."""
    return _manage_migrate("--check").returncode == 0


def _secondary_indexes(conn: psycopg.Connection[Any], table: str) -> list[tuple[str, str]]:
    """(name, definition) of the indexes of `table` that back no constraint."""
    rows = conn.execute(
        """
        SELECT i.relname, pg_get_indexdef(x.indexrelid)
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = %s::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
        """,
        [table],
    ).fetchall()
    return [(str(name), str(definition)) for name, definition in rows]


def _content_type(conn: psycopg.Connection[Any], app: str, model: str) -> int:
    row = conn.execute(
        "SELECT id FROM django_content_type WHERE app_label = %s AND model = %s", [app, model]
    ).fetchone()
    if row is None:
        raise RuntimeError(f"no content type {app}.{model}: did migrate run?")
    return int(row[0])


def _people_and_accounts(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        """
        INSERT INTO crm_team (id, name, region)
        SELECT t, 'Bench team ' || t, 'Region ' || t FROM generate_series(1, %(teams)s) t
        """,
        {"teams": TEAMS},
    )
    user_columns = (
        "id, password, last_login, is_superuser, username, first_name, last_name, email, "
        "is_staff, is_active, date_joined, role, team_id"
    )
    conn.execute(
        f"""
        INSERT INTO crm_user ({user_columns})
        SELECT u, '!', NULL::timestamptz, false, 'rep' || lpad(u::text, 4, '0'), 'Rep', u::text,
               'rep' || u || '@bench.example', false, true, now(), 'rep', (u - 1) %% 5 + 1
        FROM generate_series(1, %(reps)s) u
        UNION ALL
        SELECT %(owner_base)s + t, '!', NULL::timestamptz, false, 'owner' || t, 'Owner', t::text,
               'owner' || t || '@bench.example', false, true, now(), 'rep', t
        FROM generate_series(1, %(teams)s) t
        UNION ALL
        SELECT %(quiet)s, '!', NULL::timestamptz, false, 'quiet-follower', 'Quiet', 'Follower',
               'quiet@bench.example', false, true, now(), 'rep', 1
        UNION ALL
        SELECT %(big)s, '!', NULL::timestamptz, false, 'big-follower', 'Big', 'Follower',
               'big@bench.example', false, true, now(), 'rep', 1
        """,  # noqa: S608
        {
            "reps": REPS,
            "owner_base": OWNER_BASE,
            "teams": TEAMS,
            "quiet": QUIET_USER,
            "big": BIG_USER,
        },
    )
    conn.execute(
        """
        INSERT INTO crm_account (id, name, industry, region, record_type, created_at, updated_at,
                                 archived_at, merged_into_id, owner_id, team_id)
        SELECT a, 'Account ' || a, 'Industry ' || (a %% 7), 'Region ' || ((a - 1) %% 5 + 1),
               'customer', now(), now(), NULL::timestamptz, NULL::bigint,
               %(owner_base)s + (a - 1) %% 5 + 1,
               (a - 1) %% 5 + 1
        FROM generate_series(1, %(accounts)s) a
        """,
        {"owner_base": OWNER_BASE, "accounts": ACCOUNTS},
    )


def _generate_activities(conn: psycopg.Connection[Any]) -> None:
    """A temporary table with every activity's account, author, kind, parent and time."""
    conn.execute("SELECT setseed(0.42)")
    conn.execute(
        """
        CREATE UNLOGGED TABLE bench_feed_gen AS
        SELECT g AS id,
               CASE WHEN r1 < 0.5 THEN 1 + floor(r2 * %(hot)s)
                    WHEN r1 < 0.9 THEN %(hot)s + 1 + floor(r2 * (%(warm_end)s - %(hot)s))
                    ELSE %(warm_end)s + 1 + floor(r2 * (%(accounts)s - %(warm_end)s))
               END::bigint AS account_id,
               r3, r4,
               timestamptz '2025-11-01 00:00:00+00'
                 + (g * 31.5) * interval '1 second' AS occurred_at
        FROM (SELECT g, random() r1, random() r2, random() r3, random() r4
              FROM generate_series(1, %(n)s) g) s
        """,
        {"hot": HOT, "warm_end": WARM_END, "accounts": ACCOUNTS, "n": ACTIVITIES},
    )
    conn.execute(
        """
        CREATE UNLOGGED TABLE bench_feed_rows AS
        SELECT id, account_id, occurred_at,
               1 + 5 * floor(r4 * 200)::bigint + (account_id - 1) % 5 AS author_id,
               CASE WHEN r3 < 0.10 AND root IS NOT NULL THEN 'comment'
                    WHEN r3 < 0.45 THEN 'post'
                    WHEN r3 < 0.65 THEN 'call'
                    WHEN r3 < 0.85 THEN 'email'
                    WHEN r3 < 0.93 THEN 'meeting'
                    ELSE 'task' END AS kind,
               CASE WHEN r3 < 0.10 THEN root END AS parent_id
        FROM (
          SELECT *, max(CASE WHEN r3 >= 0.10 THEN id END) OVER (
                      PARTITION BY account_id ORDER BY id
                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS root
          FROM bench_feed_gen
        ) w
        """
    )
    conn.execute("CREATE INDEX ON bench_feed_rows (id)")
    conn.execute("DROP TABLE bench_feed_gen")


ACTIVITY_INSERT = """
INSERT INTO feed_activity (
  id, kind, subject, body, details, occurred_at, created_at, edited_at, deleted_at, account_id,
  author_id, contact_id, opportunity_id, parent_id, assignee_id, done_at, due_at,
  duration_seconds, ends_at, outcome, reaction_summary, starts_at, status, priority, queue_id)
SELECT id, kind,
       CASE WHEN kind IN ('post', 'comment') THEN '' ELSE initcap(kind) || ' ' || id END,
       'Activity ' || id || ' on account ' || account_id
         || ': notes from the field about the customer''s plans, budget and next steps.',
       '{}'::jsonb, occurred_at, occurred_at, NULL, NULL, account_id,
       author_id, NULL, NULL, parent_id,
       CASE WHEN kind = 'task' THEN author_id END, NULL,
       CASE WHEN kind = 'task' THEN occurred_at + interval '7 days' END,
       CASE WHEN kind = 'call' THEN 600 END,
       CASE WHEN kind = 'meeting' THEN occurred_at + interval '1 hour' END,
       CASE WHEN kind = 'call' THEN 'connected' ELSE '' END,
       '{}'::jsonb,
       CASE WHEN kind = 'meeting' THEN occurred_at END,
       '', '', NULL
FROM bench_feed_rows WHERE id BETWEEN %(lo)s AND %(hi)s
"""

ACTION_INSERT = """
INSERT INTO actstream_action (
  id, actor_content_type_id, actor_object_id, verb, description, target_content_type_id,
  target_object_id, action_object_content_type_id, action_object_object_id, timestamp, public)
SELECT id, %(user_ct)s, author_id::text, kind, body, %(account_ct)s, account_id::text,
       NULL, NULL, occurred_at, true
FROM feed_activity WHERE id BETWEEN %(lo)s AND %(hi)s
"""


def _follows(conn: psycopg.Connection[Any], account_ct: int) -> None:
    conn.execute("SELECT setseed(0.17)")
    # Each rep: 2 hot, 18 warm, 30 quiet accounts of their own team, chosen at random.
    conn.execute(
        """
        CREATE UNLOGGED TABLE bench_feed_follows AS
        SELECT u.id AS user_id, pick.account_id
        FROM crm_user u
        CROSS JOIN LATERAL (
          (SELECT a.id AS account_id FROM crm_account a
           WHERE a.team_id = u.team_id AND a.id <= %(hot)s AND u.id > 0
           ORDER BY random() LIMIT %(n_hot)s)
          UNION ALL
          (SELECT a.id FROM crm_account a
           WHERE a.team_id = u.team_id AND a.id > %(hot)s AND a.id <= %(warm_end)s AND u.id > 0
           ORDER BY random() LIMIT %(n_warm)s)
          UNION ALL
          (SELECT a.id FROM crm_account a
           WHERE a.team_id = u.team_id AND a.id > %(warm_end)s AND u.id > 0
           ORDER BY random() LIMIT %(n_quiet)s)
        ) pick
        WHERE u.id <= %(reps)s
        """,
        {"hot": HOT, "warm_end": WARM_END, "n_hot": 2, "n_warm": 18, "n_quiet": 30, "reps": REPS},
    )
    conn.execute(
        """
        INSERT INTO bench_feed_follows
        SELECT %(quiet)s, id FROM (
          SELECT id FROM crm_account WHERE team_id = 1 AND id > %(warm_end)s
          ORDER BY random() LIMIT 50) q
        UNION ALL
        SELECT %(big)s, id FROM (
          (SELECT id FROM crm_account WHERE team_id = 1 AND id <= %(hot)s)
          UNION ALL
          (SELECT id FROM crm_account WHERE team_id = 1 AND id > %(hot)s AND id <= %(warm_end)s
           ORDER BY random() LIMIT 180)
          UNION ALL
          (SELECT id FROM crm_account WHERE team_id = 1 AND id > %(warm_end)s
           ORDER BY random() LIMIT 300)) b
        """,
        {"quiet": QUIET_USER, "big": BIG_USER, "hot": HOT, "warm_end": WARM_END},
    )
    conn.execute(
        """
        INSERT INTO feed_follow (created_at, account_id, user_id, kinds, delivery)
        SELECT now(), account_id, user_id, '[]'::jsonb, '' FROM bench_feed_follows
        ORDER BY user_id, account_id
        """
    )
    conn.execute(
        """
        INSERT INTO actstream_follow (object_id, actor_only, started, content_type_id, user_id,
                                      flag)
        SELECT account_id::text, false, now(), %(account_ct)s, user_id, ''
        FROM bench_feed_follows ORDER BY user_id, account_id
        """,
        {"account_ct": account_ct},
    )
    conn.execute("DROP TABLE bench_feed_follows")


def _reset_sequences(conn: psycopg.Connection[Any]) -> None:
    for table in ("crm_team", "crm_user", "crm_account", "feed_activity", "actstream_action"):
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"  # noqa: S608
            f" (SELECT max(id) FROM {table}))"
        )


# The tables the build loads, Tidings' and django-activity-stream's alike.
LOADED_TABLES = (
    "crm_team",
    "crm_user",
    "crm_account",
    "feed_activity",
    "feed_follow",
    "actstream_action",
    "actstream_follow",
)
# ANALYZE's sample, in rows per 300 (PostgreSQL's default is 100: a sample of 30,000 rows).
# With the default, the peer's `target_stream` page 51 planned afresh after each build: account
# 1's share of actstream_action (0.50 %) came out of the sample anywhere in 0.46-0.54 %, and above
# ~0.53 % PostgreSQL walks the timestamp index backwards (120-130 ms) instead of its bitmap scan
# and sort (3-5 ms), in about one build of three (docs/benchmarks-feed.md). A sample ten times
# larger reads 0.50-0.51 % every time. The same sample for both sides' tables; no setting of
# either side's queries changes.
ANALYZE_TARGET = 1000


def analyze(conn: psycopg.Connection[Any], tables: tuple[str, ...] = LOADED_TABLES) -> None:
    """ANALYZE `tables` with the larger sample (set for this session only)."""
    conn.execute(f"SET default_statistics_target = {ANALYZE_TARGET}")
    for table in tables:
        conn.execute(f"ANALYZE {table}")
    conn.execute("RESET default_statistics_target")


def build() -> None:
    with _connect("postgres") as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    steps = 4 + 2 * (ACTIVITIES // CHUNK) + 3
    with tqdm(total=steps, desc="build", unit="step", file=sys.stderr) as bar:
        bar.set_postfix_str("manage.py migrate")
        _migrate()
        bar.update()
        with _connect(DB_NAME) as conn:
            conn.execute("SET session_replication_role = replica")  # no FK triggers in the load
            conn.execute("SET maintenance_work_mem = '512MB'")
            conn.execute("SET synchronous_commit = off")
            user_ct = _content_type(conn, "crm", "user")
            account_ct = _content_type(conn, "crm", "account")
            bar.set_postfix_str("teams, users, accounts")
            _people_and_accounts(conn)
            bar.update()
            bar.set_postfix_str("generating 1M activities")
            _generate_activities(conn)
            bar.update()
            dropped = {
                table: _secondary_indexes(conn, table)
                for table in ("feed_activity", "actstream_action")
            }
            for indexes in dropped.values():
                for name, _definition in indexes:
                    conn.execute(f'DROP INDEX "{name}"')
            # The row's JSON head (feed_activity.rendered) is written by its trigger (migration
            # feed 0010), which `replica` would skip like the FK triggers: it fires for this load
            # as for any other write, and is set back to the schema's own setting after it.
            conn.execute("ALTER TABLE feed_activity ENABLE ALWAYS TRIGGER feed_activity_render")
            for lo in range(1, ACTIVITIES + 1, CHUNK):
                bar.set_postfix_str(f"feed_activity {lo - 1:,}")
                conn.execute(ACTIVITY_INSERT, {"lo": lo, "hi": lo + CHUNK - 1})
                bar.update()
            conn.execute("ALTER TABLE feed_activity ENABLE TRIGGER feed_activity_render")
            for lo in range(1, ACTIVITIES + 1, CHUNK):
                bar.set_postfix_str(f"actstream_action {lo - 1:,}")
                conn.execute(
                    ACTION_INSERT,
                    {"lo": lo, "hi": lo + CHUNK - 1, "user_ct": user_ct, "account_ct": account_ct},
                )
                bar.update()
            conn.execute("DROP TABLE bench_feed_rows")
            bar.set_postfix_str("follows")
            _follows(conn, account_ct)
            _reset_sequences(conn)
            bar.update()
            bar.set_postfix_str("rebuilding indexes")
            for indexes in dropped.values():
                for _name, definition in indexes:
                    conn.execute(definition)
            bar.update()
            bar.set_postfix_str("VACUUM, ANALYZE")
            conn.execute("VACUUM")
            analyze(conn)
            conn.execute(
                "CREATE TABLE bench_feed_marker (version text NOT NULL, built_at timestamptz"
                " NOT NULL DEFAULT now())"
            )
            conn.execute("INSERT INTO bench_feed_marker (version) VALUES (%s)", [DATASET_VERSION])
            bar.update()


def ensure(*, rebuild: bool) -> Built:
    """The data set, built unless a matching one exists (or `rebuild`)."""
    started = time.perf_counter()
    counts = None if rebuild else _existing_counts()
    if counts == EXPECTED and _is_schema_current():
        return Built(reused=True, seconds=time.perf_counter() - started, counts=counts)
    if counts == EXPECTED:
        print(f"existing {DB_NAME} lacks migrations of this code; rebuilding", file=sys.stderr)
    elif counts is not None:
        print(f"existing {DB_NAME} does not match ({counts}); rebuilding", file=sys.stderr)
    build()
    counts = _existing_counts()
    if counts != EXPECTED:
        raise RuntimeError(f"built data set has counts {counts}, expected {EXPECTED}")
    return Built(reused=False, seconds=time.perf_counter() - started, counts=counts)


def describe() -> dict[str, Any]:
    """Facts about the data set for the report: activity per tier, per followed set."""
    with _connect(DB_NAME) as conn:

        def one(sql: str, params: Any = None) -> Any:
            row = conn.execute(sql, params).fetchone()
            return row[0] if row else None

        return {
            "hot_account_activities": one(
                "SELECT count(*) FROM feed_activity WHERE account_id = %s", [HOT_ACCOUNT]
            ),
            "hot_account_roots": one(
                "SELECT count(*) FROM feed_activity WHERE account_id = %s AND parent_id IS NULL",
                [HOT_ACCOUNT],
            ),
            "median_quiet_account_activities": one(
                "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY n) FROM (SELECT count(*) n"
                " FROM feed_activity WHERE account_id > %s GROUP BY account_id) s",
                [WARM_END],
            ),
            **{
                f"feed_rows_{name}": one(
                    "SELECT count(*) FROM feed_activity WHERE account_id IN"
                    " (SELECT account_id FROM feed_follow WHERE user_id = %s)",
                    [user],
                )
                for name, user in (
                    ("typical", TYPICAL_USER),
                    ("quiet", QUIET_USER),
                    ("big", BIG_USER),
                )
            },
            "postgres": one("SHOW server_version"),
            "shared_buffers": one("SHOW shared_buffers"),
        }
