"""The feed benchmark's data set is ANALYZEd, both sides' tables, with a sample large enough that
the peer's plans do not flip from one build to the next (bench/feed/build.py)."""

from __future__ import annotations

import inspect
import re

import pytest
from django.db import connection

from bench.feed import build
from crm.models import Team


def test_every_table_the_build_loads_is_analyzed() -> None:
    loaded = set(re.findall(r"INSERT INTO (\w+)", inspect.getsource(build)))
    scratch = {"bench_feed_follows", "bench_feed_marker"}  # the generator's and the marker
    assert loaded - scratch == set(build.LOADED_TABLES)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the benchmark runs on PostgreSQL")
def test_analyze_samples_more_than_the_default(db: None) -> None:
    Team.objects.bulk_create([Team(name=f"Team {n:04d}") for n in range(500)])
    raw = connection.connection
    build.analyze(raw, ("crm_team",))  # actstream's tables exist only in the benchmark's
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT array_length(histogram_bounds::text::text[], 1) FROM pg_stats"
            " WHERE tablename = 'crm_team' AND attname = 'name'"
        )
        (bounds,) = cursor.fetchone()
        cursor.execute("SHOW default_statistics_target")
        (target,) = cursor.fetchone()
    assert bounds > 101  # the default sample keeps at most 101 bounds
    assert target == "100"  # the session's setting is back to the default
