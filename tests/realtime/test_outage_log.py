"""The hub's log while Redis or PostgreSQL is down: one traceback, reminders, one recovery line."""

from __future__ import annotations

import logging

import pytest

from realtime.hub import OUTAGE_REMINDER_EVERY, POLL, Outage


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(outage: Outage, clock: Clock, times: int) -> None:
    for _ in range(times):
        try:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        except ConnectionError:
            outage.failed()
        clock.now += POLL


def test_an_outage_logs_one_traceback_then_reminders_then_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    outage = Outage("receiving from the channel layer", clock=clock)
    attempts = int(2.5 * OUTAGE_REMINDER_EVERY / POLL)
    with caplog.at_level(logging.WARNING, logger="realtime.hub"):
        fail(outage, clock, attempts)
        outage.worked()
        outage.worked()  # nothing was failing any more: nothing to say
    records = [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    first, *reminders, recovered = records
    assert first[0] == "ERROR" and first[2], first  # the traceback, once
    assert "receiving from the channel layer failed" in first[1]
    assert len(reminders) == 2, reminders  # at 60 s and 120 s of a 150 s outage
    for level, message, traceback in reminders:
        assert level == "ERROR" and not traceback
        assert "still failing" in message and "Connection refused" in message
    assert recovered[0] == "WARNING" and not recovered[2]
    assert f"after {attempts} failed attempts in {attempts * POLL:.1f} s" in recovered[1]


def test_a_second_outage_is_logged_as_new(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    outage = Outage("reading the outbox", clock=clock)
    with caplog.at_level(logging.WARNING, logger="realtime.hub"):
        fail(outage, clock, 3)
        outage.worked()
        fail(outage, clock, 2)
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert len(tracebacks) == 2
    assert "after 3 failed attempts" in caplog.records[1].getMessage()
