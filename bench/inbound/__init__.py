"""The inbound email benchmark of issue 6: `python -m bench.inbound` (never part of `make test`).

2,000 generated messages through the raw endpoint and a Celery worker on PostgreSQL and Redis,
against bare standard-library parsing of the same messages in the same run. See
bench/inbound/run.py; the figures go to docs/benchmarks-inbound.md.
"""
