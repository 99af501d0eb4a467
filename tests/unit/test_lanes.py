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


def _count_wakeups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    loop = asyncio.get_running_loop()
    count = [0]
    real = loop.call_soon_threadsafe

    def counted(callback: Any, *args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return real(callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    return count


async def test_a_busy_lane_hands_results_back_in_batches_while_the_event_loop_waits_idle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Waking an idle event loop for every result costs a system call on each side and a contest for the
    GIL with the very thread that is running the next job: while jobs are queued, results are held
    (up to Lane.HOLD_MAX of them, for at most Lane.HOLD_FOR seconds)."""
    wakeups = _count_wakeups(monkeypatch)
    lane = Lane("test-lane", 1)
    try:
        results = await asyncio.gather(*(lane.submit(sum, range(200)) for _ in range(128)))
    finally:
        await asyncio.to_thread(lane.stop)
    assert results == [sum(range(200))] * 128
    assert wakeups[0] <= 128 // Lane.HOLD_MAX + 4


async def test_a_result_held_back_is_handed_over_within_hold_for_even_behind_a_slow_job() -> None:
    lane = Lane("test-lane", 1)
    try:
        quick = lane.submit(lambda: "quick")
        slow = lane.submit(time.sleep, 1.0)
        t0 = time.perf_counter()
        assert await quick == "quick"
        waited = time.perf_counter() - t0
        assert not slow.done()
        await slow
    finally:
        await asyncio.to_thread(lane.stop)
    assert waited < 0.5


async def test_stopping_a_lane_hands_back_every_result_it_held() -> None:
    lane = Lane("test-lane", 1)
    futures = [lane.submit(lambda i=i: i) for i in range(50)]
    await asyncio.to_thread(lane.stop)
    await asyncio.sleep(0.05)
    assert [f.result() for f in futures] == list(range(50))
