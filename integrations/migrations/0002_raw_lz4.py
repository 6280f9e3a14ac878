"""The raw message is compressed with lz4 instead of pglz when PostgreSQL has it.

Measured on the inbound benchmark's mail (13.5 KB a message on average, 5 % with a base64
attachment of 100 KB): storing a message cost PostgreSQL 0.47-0.53 ms of CPU with pglz, the
default, and 0.15-0.17 ms with lz4, for 13 % more space; the accepting INSERT was most of the
database's share of an inbound message (docs/benchmarks-inbound.md). Reading it back for the
worker's claim is faster too. Only new values are compressed with it; rows already stored keep
pglz and read as before. A server built without lz4 (or another database) keeps the default.
"""

from django.db import migrations

LZ4 = """
DO $$
BEGIN
    ALTER TABLE integrations_inboundemail ALTER COLUMN raw SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR syntax_error THEN
    RAISE NOTICE 'lz4 is not available; the raw messages keep the default compression';
END $$;
"""
DEFAULT = "ALTER TABLE integrations_inboundemail ALTER COLUMN raw SET COMPRESSION default"


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(LZ4)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DEFAULT)


class Migration(migrations.Migration):
    dependencies = [("integrations", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
