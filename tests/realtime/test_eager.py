"""`start_eagerly`: a coroutine runs on the caller's stack until it really waits."""

from __future__ import annotations

import asyncio

import pytest

from realtime.consumers import start_eagerly


async def test_a_coroutine_that_never_waits_completes_at_once_without_a_task() -> None:
    done: list[str] = []

    async def deliver() -> None:
        done.append("sent")

    assert start_eagerly(deliver()) is None
    assert done == ["sent"]


async def test_a_coroutine_that_waits_is_finished_by_a_task_in_order() -> None:
    steps: list[str] = []
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    lock = asyncio.Lock()

    async def deliver(name: str) -> None:
        async with lock:
            steps.append(f"{name} started")
            if name == "first":
                steps.append(await ready)
            await asyncio.sleep(0)  # a bare yield is resumed too
            steps.append(f"{name} done")

    first = start_eagerly(deliver("first"))
    assert first is not None and steps == ["first started"]
    # A second delivery finds the lock held: it waits its turn behind the first.
    second = start_eagerly(deliver("second"))
    assert second is not None and steps == ["first started"]
    ready.set_result("answer")
    await asyncio.gather(first, second)
    assert steps == ["first started", "answer", "first done", "second started", "second done"]


async def test_an_error_while_waiting_is_raised_in_the_coroutine() -> None:
    failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    caught: list[str] = []

    async def deliver() -> None:
        try:
            await failed
        except ValueError as error:
            caught.append(str(error))

    task = start_eagerly(deliver())
    assert task is not None
    failed.set_exception(ValueError("database down"))
    await task
    assert caught == ["database down"]


async def test_cancelling_the_finishing_task_cancels_the_coroutine() -> None:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    cleaned_up: list[bool] = []

    async def deliver() -> None:
        try:
            await never
        finally:
            cleaned_up.append(True)

    task = start_eagerly(deliver())
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned_up == [True] and never.cancelled()


async def test_an_error_at_once_is_logged_not_raised_to_the_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def deliver() -> None:
        raise RuntimeError("boom")

    assert start_eagerly(deliver()) is None
    assert "a delivery failed" in caplog.text
