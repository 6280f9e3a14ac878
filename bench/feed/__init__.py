"""The feed pages benchmark of issue 3: `python -m bench.feed` (never part of `make test`).

It builds the data set of DESIGN.md section 7 (10k accounts, 1k users following 50 accounts each,
a user following only quiet accounts, a user following 500, 1M activities) with bulk SQL in its own
PostgreSQL database (`tidings_feedbench`, reused while it matches), loads the same rows into
django-activity-stream's tables, and measures the timeline and home-feed pages at page 1 and page 51
for Tidings (its real API views) and for django-activity-stream (`target_stream`, `user_stream`).
See bench/feed/run.py; the figures go to docs/benchmarks-feed.md.
"""
