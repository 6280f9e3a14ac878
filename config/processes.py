"""The processes that make up a Tidings deployment, in one place.

`make run` starts them together (scripts/run.py) and docker-compose.yml runs each as a service;
tests/config/test_compose.py checks that both agree with this list.
"""

from __future__ import annotations


def web(host: str, port: int) -> list[str]:
    return ["daphne", "-b", host, "-p", str(port), "config.asgi:application"]


WORKER = ["celery", "-A", "config", "worker", "--loglevel", "INFO"]
BEAT = ["celery", "-A", "config", "beat", "--loglevel", "INFO"]
