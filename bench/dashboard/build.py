"""The dashboard's data set: the feed benchmark's 1M activities, plus what a dashboard reads.

`tidings_dashbench` is a copy of `tidings_feedbench` (bench/feed/build.py builds it when it is
missing) made with `CREATE DATABASE ... TEMPLATE`, so the feed's shared data set is never changed.
The copy is migrated to this checkout's schema and given, with bulk SQL (deterministic: `setseed`):

- a manager of team 1 (`bench-manager`, 200 reps and 2,000 accounts under them), a manager of a
  team of a real size (`bench-squad-manager`: "Bench squad", 20 of team 2's reps and 200 of its
  accounts) and a support agent (`bench-support`, who sees every account);
- 20,000 requests over the year (70 % resolved; priorities, due times, assignees mixed);
- 20,000 tracked opportunity changes (`change` activities: stage or amount);
- 60 % of tasks done two days after they were set.

A marker table records the version; a later run reuses the copy while the version matches.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import psycopg

from bench.feed import build as feed_build

# Its own copy per checkout when engineers benchmark side by side (TIDINGS_DASHBENCH_DB).
DB_NAME = os.environ.get("TIDINGS_DASHBENCH_DB", "tidings_dashbench")
DATABASE_URL = (
    f"postgres://{feed_build.PG_USER}@{feed_build.PG_HOST}:{feed_build.PG_PORT}/{DB_NAME}"
)
VERSION = "dashboard-3"
MANAGER = feed_build.BIG_USER + 1
SUPPORT = feed_build.BIG_USER + 2
# A team of a real size beside the 200-rep ones: 20 of team 2's reps and 200 of its accounts.
SQUAD_MANAGER = feed_build.BIG_USER + 3
SQUAD_TEAM = 6
REQUESTS = 20_000
CHANGES = 20_000


def _is_current() -> bool:
    try:
        with feed_build._connect(DB_NAME) as conn:
            row = conn.execute("SELECT version FROM bench_dashboard_marker").fetchone()
    except psycopg.Error:
        return False
    return row is not None and row[0] == VERSION


def _migrate() -> None:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=DATABASE_URL,
        DJANGO_SETTINGS_MODULE="bench.feed.peer_settings",
        TIDINGS_LOG_LEVEL="WARNING",
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=feed_build.REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py migrate failed:\n{done.stdout}\n{done.stderr}")


ADDITIONS = [
    "SELECT setseed(0.7)",
    f"""
    INSERT INTO crm_user (id, password, last_login, is_superuser, username, first_name, last_name,
                          email, is_staff, is_active, date_joined, role, team_id)
    VALUES ({MANAGER}, '!', NULL, false, 'bench-manager', 'Bench', 'Manager',
            'manager@bench.example', false, true, now(), 'manager', NULL),
           ({SUPPORT}, '!', NULL, false, 'bench-support', 'Bench', 'Support',
            'support@bench.example', false, true, now(), 'support', NULL)
    """,  # noqa: S608 - module constants, no outside input
    f"INSERT INTO crm_team_managers (team_id, user_id) VALUES (1, {MANAGER})",  # noqa: S608
    f"""
    INSERT INTO crm_team (id, name, region) VALUES ({SQUAD_TEAM}, 'Bench squad', 'Region 2');
    UPDATE crm_user SET team_id = {SQUAD_TEAM} WHERE id IN (SELECT generate_series(2, 97, 5));
    UPDATE crm_account SET team_id = {SQUAD_TEAM} WHERE team_id = 2 AND id <= 1000;
    INSERT INTO crm_user (id, password, last_login, is_superuser, username, first_name,
                          last_name, email, is_staff, is_active, date_joined, role, team_id)
    VALUES ({SQUAD_MANAGER}, '!', NULL, false, 'bench-squad-manager', 'Squad', 'Manager',
            'squad@bench.example', false, true, now(), 'manager', NULL);
    INSERT INTO crm_team_managers (team_id, user_id) VALUES ({SQUAD_TEAM}, {SQUAD_MANAGER})
    """,  # noqa: S608 - module constants, no outside input
    # Requests: on random accounts, raised by a rep of the account's team, 70 % resolved.
    f"""
    INSERT INTO feed_activity (
      kind, subject, body, details, occurred_at, created_at, account_id, author_id,
      assignee_id, due_at, status, priority, queue_id, reaction_summary, outcome)
    SELECT 'request', 'Request ' || g, 'Something is broken.', '{{}}'::jsonb, at, at, account,
           ((random() * 199)::int) * 5 + (account - 1) % 5 + 1,
           CASE WHEN random() < 0.6 THEN {SUPPORT}
                WHEN random() < 0.5 THEN ((random() * 199)::int) * 5 + (account - 1) % 5 + 1 END,
           at + (ARRAY[interval '4 hours', interval '1 day', interval '3 days',
                       interval '5 days'])[1 + (g % 4)],
           CASE WHEN random() < 0.7 THEN 'resolved'
                ELSE (ARRAY['open', 'in_progress', 'waiting'])[1 + (g % 3)] END,
           (ARRAY['urgent', 'high', 'normal', 'low'])[1 + (g % 4)],
           (SELECT id FROM feed_requestqueue WHERE name = 'Support'), '{{}}'::jsonb, ''
    FROM (
      SELECT g, 1 + (random() * 9999)::int AS account,
             timestamptz '2025-11-01' + random() * interval '365 days' AS at
      FROM generate_series(1, {REQUESTS}) g
    ) r
    """,  # noqa: S608 - module constants, no outside input
    # Tracked opportunity changes: half stage, half amount.
    f"""
    INSERT INTO feed_activity (
      kind, subject, body, details, occurred_at, created_at, account_id, author_id,
      status, priority, reaction_summary, outcome)
    SELECT 'change', 'Deal ' || g || ': changed', '',
           CASE WHEN g % 2 = 0 THEN jsonb_build_object(
                  'record', 'opportunity:' || g, 'record_name', 'Deal ' || g,
                  'fields', jsonb_build_object('stage', jsonb_build_object(
                     'label', 'Stage', 'old', 'Qualification', 'new', 'Proposal')))
                ELSE jsonb_build_object(
                  'record', 'opportunity:' || g, 'record_name', 'Deal ' || g,
                  'fields', jsonb_build_object('amount', jsonb_build_object(
                     'label', 'Amount', 'old', (g * 10)::text, 'new', (g * 12)::text))) END,
           at, at, account, ((random() * 199)::int) * 5 + (account - 1) % 5 + 1,
           '', '', '{{}}'::jsonb, ''
    FROM (
      SELECT g, 1 + (random() * 9999)::int AS account,
             timestamptz '2025-11-01' + random() * interval '365 days' AS at
      FROM generate_series(1, {CHANGES}) g
    ) c
    """,  # noqa: S608 - module constants, no outside input
    "UPDATE feed_activity SET done_at = occurred_at + interval '2 days'"
    " WHERE kind = 'task' AND id % 10 < 6",
    # The feed's data set is written by SQL, not by the actions that keep each account's last
    # customer-facing activity: read it from the timelines, as the migration does.
    """
    INSERT INTO feed_accounttouch (account_id, last_touch_at)
    SELECT account_id, MAX(occurred_at) FROM feed_activity
    WHERE kind IN ('email', 'meeting', 'call') AND deleted_at IS NULL GROUP BY account_id
    ON CONFLICT (account_id) DO UPDATE SET last_touch_at = EXCLUDED.last_touch_at
    """,
]


def build() -> None:
    feed_build.ensure(rebuild=False)
    with feed_build._connect("postgres") as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DB_NAME}" TEMPLATE "{feed_build.DB_NAME}"')
    _migrate()
    with feed_build._connect(DB_NAME) as conn:
        for statement in ADDITIONS:
            conn.execute(statement)  # type: ignore[arg-type]
        conn.execute("VACUUM ANALYZE")
        conn.execute("CREATE TABLE bench_dashboard_marker (version text NOT NULL)")
        conn.execute("INSERT INTO bench_dashboard_marker (version) VALUES (%s)", [VERSION])


def ensure(*, rebuild: bool) -> dict[str, Any]:
    started = time.perf_counter()
    reused = not rebuild and _is_current()
    if reused:
        _migrate()  # the copy is this benchmark's own: bring it to this checkout's schema
    else:
        build()
    return {"reused": reused, "seconds": round(time.perf_counter() - started, 1)}
