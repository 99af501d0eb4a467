"""Telegram's overall ~30 messages a second, kept by one pacer for all sends (handlers/telegram/pacing.py)."""

from __future__ import annotations

import asyncio
import itertools
import time

from handlers.telegram.pacing import SendPacer


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
