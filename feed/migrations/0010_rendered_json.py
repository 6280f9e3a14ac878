"""Each activity's JSON head, written once by PostgreSQL triggers (`feed_activity.rendered`).

The API's timeline and home pages used to have PostgreSQL write every row's JSON on every page
(~0.2 ms of a 0.7 ms timeline page: docs/benchmarks-feed.md). The text of the fields that change
only when the row or its people change is now kept in a column that Django does not know of
(no model field: the ORM never reads or writes it), filled by triggers, so every door that
writes (the actions, the admin, queryset `update()`, bulk or raw SQL, merges and moves) keeps it
true:

- `feed_activity_render`, BEFORE INSERT and BEFORE UPDATE OF any column the head shows (and of
  `rendered` itself, so a write to it is re-rendered): the head from the row and its author's and
  assignee's names.
- `crm_user_rerender_activities`, AFTER UPDATE of a user's username or names (a rename, an
  erasure): the head of every activity they wrote or are assigned.

PL/pgSQL rather than SQL functions: PL/pgSQL keeps its statement's plan for the session, where
a SQL function called from a trigger is planned again on every row (20,000 rows inserted into
the benchmark's data set: 111 us a row without the trigger, 211 with a SQL function, 160 now).

The head is `feed.serializers.activity_json` as DRF's JSONRenderer writes it, from `{"id":` to the
value of `"queue"`, with `"is_overdue":false`: overdue depends on the time of the read, which
`feed.sqlrows.ActivityJSONColumns` splices in, as it appends details, reactions and `internal`
(jsonb is re-encoded compactly in Python when not empty). A change to that shape needs a
migration that replaces `feed_activity_json_head` and re-renders the rows. PostgreSQL only: on
SQLite the pages are written in Python.
"""

import sys

from django.db import migrations

# What str.strip() strips (User.get_full_name, hence display_name), as a PostgreSQL literal.
_WHITESPACE = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
_WHITESPACE_SQL = "E'" + "".join(f"\\u{ord(c):04x}" for c in _WHITESPACE) + "'"


def _string(column: str) -> str:
    return f"coalesce(to_json({column})::text, 'null')"


def _number(column: str) -> str:
    return f"coalesce({column}::text, 'null')"


def _when(column: str) -> str:
    """isoformat() of the UTC time, microseconds only when not zero, "Z" for UTC."""
    text = (
        f"""replace(to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),"""
        " '.000000', '')"
    )
    return f"""coalesce('"' || {text} || 'Z"', 'null')"""


def _bool(condition: str) -> str:
    return f"CASE WHEN {condition} THEN 'true' ELSE 'false' END"


def _person(alias: str, key: str) -> str:
    full_name = f"btrim({alias}.first_name || ' ' || {alias}.last_name, {_WHITESPACE_SQL})"
    display = f"coalesce(nullif({full_name}, ''), {alias}.username)"
    return (
        f"CASE WHEN a.{key} IS NULL OR {alias}.id IS NULL THEN 'null' ELSE"
        f""" '{{"id":' || {alias}.id || ',"username":' || to_json({alias}.username)::text"""
        f""" || ',"display_name":' || to_json({display})::text || '}}' END"""
    )


_FIELDS = [
    ("id", "a.id::text"),
    ("kind", _string("a.kind")),
    ("account", _number("a.account_id")),
    ("contact", _number("a.contact_id")),
    ("opportunity", _number("a.opportunity_id")),
    ("parent", _number("a.parent_id")),
    ("author", _person("au", "author_id")),
    ("subject", _string("a.subject")),
    ("body", _string("a.body")),
    ("occurred_at", _when("a.occurred_at")),
    ("created_at", _when("a.created_at")),
    ("is_edited", _bool("a.edited_at IS NOT NULL")),
    ("assignee", _person("aa", "assignee_id")),
    ("due_at", _when("a.due_at")),
    ("is_done", f"CASE WHEN a.kind = 'task' THEN {_bool('a.done_at IS NOT NULL')} ELSE 'null' END"),
    ("is_overdue", "'false'"),  # spliced in at read time (feed.sqlrows.ActivityJSONColumns)
    ("starts_at", _when("a.starts_at")),
    ("ends_at", _when("a.ends_at")),
    ("duration_seconds", _number("a.duration_seconds")),
    ("outcome", _string("a.outcome")),
    ("status", _string("a.status")),
    ("priority", _string("a.priority")),
    ("queue", _number("a.queue_id")),
]
_HEAD = " || ".join(
    f"""'{"{" if i == 0 else ","}"{name}":' || {sql}""" for i, (name, sql) in enumerate(_FIELDS)
)
# The columns the head reads (an UPDATE that sets none of them keeps it), and `rendered`.
_SHOWN = (
    "id, kind, account_id, contact_id, opportunity_id, parent_id, author_id, subject, body,"
    " occurred_at, created_at, edited_at, assignee_id, due_at, done_at, starts_at, ends_at,"
    " duration_seconds, outcome, status, priority, queue_id, rendered"
)

FORWARD = [
    "ALTER TABLE feed_activity ADD COLUMN rendered text",
    f"""
    CREATE FUNCTION feed_activity_json_head(a feed_activity) RETURNS text
    LANGUAGE plpgsql STABLE AS $$
    BEGIN
      RETURN (
        SELECT {_HEAD}
        FROM (SELECT 1) one
        LEFT JOIN crm_user au ON au.id = a.author_id
        LEFT JOIN crm_user aa ON aa.id = a.assignee_id
      );
    END $$
    """,  # noqa: S608 -- fixed text of this file's column names; no values
    """
    CREATE FUNCTION feed_activity_render() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      NEW.rendered := feed_activity_json_head(NEW);
      RETURN NEW;
    END $$
    """,
    f"""
    CREATE TRIGGER feed_activity_render BEFORE INSERT OR UPDATE OF {_SHOWN} ON feed_activity
    FOR EACH ROW EXECUTE FUNCTION feed_activity_render()
    """,
    """
    CREATE FUNCTION crm_user_rerender_activities() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE feed_activity SET rendered = NULL WHERE author_id = NEW.id OR assignee_id = NEW.id;
      RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER crm_user_rerender_activities AFTER UPDATE OF username, first_name, last_name
    ON crm_user FOR EACH ROW
    WHEN (OLD.username IS DISTINCT FROM NEW.username
          OR OLD.first_name IS DISTINCT FROM NEW.first_name
          OR OLD.last_name IS DISTINCT FROM NEW.last_name)
    EXECUTE FUNCTION crm_user_rerender_activities()
    """,
    # The rows already there (the trigger renders them).
    "UPDATE feed_activity SET rendered = NULL",
    "ALTER TABLE feed_activity ALTER COLUMN rendered SET NOT NULL",
]

BACKWARD = [
    "DROP TRIGGER crm_user_rerender_activities ON crm_user",
    "DROP FUNCTION crm_user_rerender_activities()",
    "DROP TRIGGER feed_activity_render ON feed_activity",
    "DROP FUNCTION feed_activity_render()",
    "DROP FUNCTION feed_activity_json_head(feed_activity)",
    "ALTER TABLE feed_activity DROP COLUMN rendered",
]


def _run(statements: list[str]) -> object:
    def run(apps: object, schema_editor: object) -> None:
        connection = schema_editor.connection  # type: ignore[attr-defined]
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0001_initial"),
        ("feed", "0009_follow_picky_index"),
    ]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
