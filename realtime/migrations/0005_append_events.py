"""`realtime_append_events`: the sequencer lock, the ids and the INSERT of new events, in one call.

`realtime.outbox.record_events` made three round trips for them, all but the first with the
sequencer lock held: the lock, then the newest id and the new ids, then the INSERT (~0.4-0.8 ms
each on the benchmark's machine, a third of a post's statements after its own rows). A function
does the three in one statement, which is the only way to keep them correct together: in READ
COMMITTED a statement's snapshot is taken when it starts, so a `MAX(id)` in the statement that
waits for the lock could miss the event of the transaction it waited for. A VOLATILE function
takes a fresh snapshot for each statement it runs, so its `MAX(id)`, run after the lock is
granted, sees every event committed before. The lock is still `pg_advisory_xact_lock` on the
key the caller passes (`realtime.outbox.SEQUENCER_LOCK_KEY`), held until the caller's commit.

Ids are drawn from the table's own sequence, sorted, and given to the events in the order passed;
each event's `prev_id` is the one before it (the first's, the newest committed event, or the
pruning mark when pruning left no event). PostgreSQL
only: on SQLite the database write lock serialises writers and the events are written by the ORM.
"""

from django.db import migrations

FORWARD = [
    """
    CREATE FUNCTION realtime_append_events(
        lock_key bigint, streams text[], topics text[], types text[], datas text[], at timestamptz
    ) RETURNS TABLE (event_id bigint, event_prev_id bigint)
    LANGUAGE plpgsql VOLATILE AS $$
    DECLARE
        previous bigint;
        ids bigint[];
    BEGIN
        IF current_setting('transaction_isolation') <> 'read committed' THEN
            -- One snapshot for the whole transaction: MAX(id) could predate the lock.
            RAISE EXCEPTION 'realtime_append_events needs READ COMMITTED, not %',
                current_setting('transaction_isolation');
        END IF;
        PERFORM pg_advisory_xact_lock(lock_key);
        -- A statement of its own, so a snapshot taken after the lock was granted. When pruning
        -- has emptied the table, the newest event committed is the pruning mark.
        SELECT GREATEST(
                   (SELECT MAX(e.id) FROM realtime_event e),
                   (SELECT m.pruned_through FROM realtime_outboxmark m WHERE m.id = 1))
          INTO previous;
        SELECT array_agg(v ORDER BY v) INTO ids
          FROM (SELECT nextval(pg_get_serial_sequence('realtime_event', 'id')) AS v
                  FROM generate_series(1, cardinality(streams))) drawn;
        RETURN QUERY
        INSERT INTO realtime_event AS e (id, stream, topic, prev_id, type, data, created_at)
        SELECT ids[n.ord],
               n.stream,
               n.topic,
               CASE WHEN n.ord = 1 THEN previous ELSE ids[n.ord - 1] END,
               n.type,
               n.data::jsonb,
               at
          FROM unnest(streams, topics, types, datas) WITH ORDINALITY AS n(stream, topic, type, data, ord)
         ORDER BY n.ord
        RETURNING e.id, e.prev_id;
    END
    $$
    """,
]

BACKWARD = [
    "DROP FUNCTION realtime_append_events(bigint, text[], text[], text[], text[], timestamptz)"
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
        ("realtime", "0004_outbox_mark"),
    ]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
