"""The sender's pacing: one message a second per private chat, within 30 a second overall."""

from __future__ import annotations

import itertools
import time

from handlers.telegram.workers.outbox import OutboxSender, backoff


async def test_messages_to_one_private_chat_are_spaced_a_second_apart() -> None:
    sender = OutboxSender(None, None, None, private_interval=0.2)  # type: ignore[arg-type]
    stamps = []
    for _ in range(4):
        await sender._pace("501")
        stamps.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(g >= 0.19 for g in gaps)


async def test_different_chats_share_only_the_global_rate() -> None:
    sender = OutboxSender(None, None, None, per_second=30)  # type: ignore[arg-type]
    start = time.monotonic()
    for chat in range(31):
        await sender._pace(str(chat))
    took = time.monotonic() - start
    assert 0.95 <= took < 2.0  # 31 sends at 30/s: about one second, not 31


async def test_groups_get_twenty_messages_a_minute() -> None:
    sender = OutboxSender(None, None, None)  # type: ignore[arg-type]
    await sender._pace("-100123")
    assert sender._next_chat["-100123"] - time.monotonic() > 2.9


def test_retries_back_off_exponentially_up_to_five_minutes() -> None:
    assert [backoff(n).total_seconds() for n in (0, 1, 2, 5, 20)] == [1, 2, 4, 32, 300]
