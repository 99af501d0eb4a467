"""Telegram's flood limits kept by the bot (pacing.py): ~30 messages a second, 20 a minute per group."""

from __future__ import annotations

import asyncio
import itertools
import time

from handlers.telegram.pacing import GroupPacer, SendPacer


async def test_sends_held_back_by_a_busy_event_loop_still_leave_one_slot_apart() -> None:
    """Sends that asked for slots before the event loop stalled do not all go at once when it resumes:
    Telegram would refuse the burst with 429 and the invoices among them would release their stock."""
    pacer = SendPacer(per_second=20)
    went: list[float] = []

    async def send() -> None:
        await pacer.turn()
        went.append(time.monotonic())

    tasks = [asyncio.create_task(send()) for _ in range(6)]
    await asyncio.sleep(0)  # the first takes its slot and the rest queue
    time.sleep(0.3)  # noqa: ASYNC251 (the event loop is held up on purpose)
    await asyncio.gather(*tasks)
    gaps = [b - a for a, b in itertools.pairwise(sorted(went))]
    assert all(g >= 0.045 for g in gaps), gaps


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_group_gets_at_most_its_allowance_in_any_window_each_send_a_gap_after_the_last() -> None:
    clock = _Clock()
    groups = GroupPacer(20, gap=1.0, window=61.0, clock=clock)
    waits = [await groups.slot(-100) for _ in range(20)]
    assert waits == [float(i) for i in range(20)]  # the 20th goes 19 s from now, one a second
    assert await groups.slot(-100) is None  # the 21st in the minute is not queued
    assert await groups.slot(-200) == 0.0  # another group has its own allowance
    clock.now += 60.9  # the first send is 60.9 s old: still inside the window
    assert await groups.slot(-100) is None
    clock.now += 0.2
    assert await groups.slot(-100) == 0.0  # 61.1 s: it left the window, one more may go


async def test_sends_a_group_allows_never_exceed_20_in_any_minute_whatever_their_timing() -> None:
    clock = _Clock()
    groups = GroupPacer(20, gap=1.0, window=61.0, clock=clock)
    sent: list[float] = []
    for step in [0.1, 0.5, 3.0, 0.0, 7.0, 0.2] * 60:
        clock.now += step
        wait = await groups.slot(-1)
        if wait is not None:
            sent.append(clock.now + wait)
    assert len(sent) > 60
    assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(sent))
    assert max(sum(1 for t in sent if s <= t < s + 60.0) for s in sent) <= 20


async def test_a_keyed_allowance_counts_without_pacing_and_refuses_beyond_its_limit() -> None:
    clock = _Clock()
    groups = GroupPacer(clock=clock)
    assert [await groups.allow(("sharer", -1, 7), 5) for _ in range(6)] == [True] * 5 + [False]
    assert await groups.allow(("sharer", -1, 8), 5)  # someone else
    clock.now += 61.5
    assert await groups.allow(("sharer", -1, 7), 5)


async def test_a_pacer_of_many_groups_forgets_the_idle_ones() -> None:
    clock = _Clock()
    groups = GroupPacer(clock=clock, max_keys=10)
    for chat in range(10):
        await groups.slot(-chat - 1)
    clock.now += 100
    await groups.slot(-99)
    assert len(groups._slots) == 1
