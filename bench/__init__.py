"""The real-time delivery benchmark: `make bench` (`python -m bench`); never part of `make test`.

It builds its own PostgreSQL database (`tidings_bench`) and uses its own Redis database, starts
each system under test as a subprocess, connects WebSocket clients in this process and measures
post -> delivery latency, burst throughput, loss, duplicates, connect time and memory per idle
connection for Tidings (on daphne and on uvicorn) and for two peers: a bare ASGI broadcast app (the
floor) and a naive Channels app (one group per account on the default Redis layer). The results
are printed and written to docs/benchmarks.md. See bench/run.py.
"""
