"""Publishing a task when the broker is gone costs one reconnect, not kombu's default of three
retries 0.2 s apart: the publish runs after commit on a request's path, and every task we publish
has a row that a periodic sweep works when its message never left (config/celery.py)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from kombu.exceptions import OperationalError

from config.celery import app
from notifications import tasks


@pytest.fixture
def hanging_up_broker() -> Iterator[tuple[int, list[int]]]:
    """A port that accepts connections and closes each at once, as a dying Redis does; the list
    counts the connections it was asked for."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[int] = []

    def serve() -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            accepted.append(1)
            client.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    server.close()
    thread.join(timeout=5)


def test_a_publish_to_a_lost_broker_tries_once_more_then_gives_up(
    hanging_up_broker: tuple[int, list[int]],
) -> None:
    port, accepted = hanging_up_broker
    with (
        app.connection_for_write(f"redis://127.0.0.1:{port}/0") as connection,
        pytest.raises(OperationalError),
    ):
        tasks.notify_happening.apply_async((1,), connection=connection)
    # The first attempt and one reconnect (for a pooled connection a Redis restart made stale);
    # kombu's default policy made four.
    assert len(accepted) == 2
