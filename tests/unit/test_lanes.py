"""The database threads' hand-off (core/lanes.py): results in order, errors as raised, cancelled callers
skipped, and a burst of results handed back with far fewer wake-ups of the event loop than results."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from core.lanes import Lane


async def test_a_lane_runs_jobs_in_order_on_its_thread_and_returns_results_and_errors() -> None:
    lane = Lane("test-lane", 1)
    seen: list[tuple[int, str]] = []

    def job(i: int) -> int:
        seen.append((i, threading.current_thread().name))
        if i == 3:
            raise KeyError(i)
        return i * 10

    try:
        results = await asyncio.gather(*(lane.submit(job, i) for i in range(6)), return_exceptions=True)
    finally:
        await asyncio.to_thread(lane.stop)
    assert results[:3] == [0, 10, 20] and isinstance(results[3], KeyError) and results[4:] == [40, 50]
    assert [i for i, _ in seen] == list(range(6))
    assert {name for _, name in seen} == {"test-lane_0"}


async def test_a_job_whose_caller_gave_up_before_its_turn_never_runs() -> None:
    lane = Lane("test-lane", 1)
    ran: list[str] = []
    gate = threading.Event()
    try:
        first = lane.submit(lambda: gate.wait(5))
        second = lane.submit(lambda: ran.append("second"))
        second.cancel()
        gate.set()
        await first
        await lane.submit(lambda: None)
    finally:
        await asyncio.to_thread(lane.stop)
    assert ran == []


async def test_a_burst_of_results_wakes_the_event_loop_far_fewer_times_than_there_are_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    wakeups = 0
    real = loop.call_soon_threadsafe

    def counted(callback: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal wakeups
        wakeups += 1
        return real(callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    lane = Lane("test-lane", 1)
    try:
        futures = [lane.submit(time.sleep, 0.0005) for _ in range(200)]
        time.sleep(0.3)  # noqa: ASYNC251 (the event loop is busy on purpose: results pile up meanwhile)
        await asyncio.gather(*futures)
    finally:
        await asyncio.to_thread(lane.stop)
    assert wakeups < 20


async def test_a_stopped_lane_refuses_new_jobs() -> None:
    lane = Lane("test-lane", 2)
    assert await lane.submit(lambda: 1) == 1
    await asyncio.to_thread(lane.stop)
    with pytest.raises(RuntimeError, match="stopped"):
        lane.submit(lambda: 2)
