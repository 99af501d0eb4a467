"""Waiting for the bot's messages: each waiter is woken by its own chat only."""

from __future__ import annotations

import asyncio

import pytest

from sandbox.telegram import Emulator, Sent
from tests.unit.sandbox.telegram.conftest import USER, call

OTHERS = range(100, 150)


async def test_a_waiter_is_woken_only_by_messages_to_its_own_chat(emu: Emulator) -> None:
    for uid in OTHERS:
        emu.user(uid)
    looked_at: list[Sent] = []

    def mine(sent: Sent) -> bool:
        looked_at.append(sent)
        return sent.text == "yours"

    await call(emu, "sendMessage", chat_id=USER, text="earlier")
    waiting = asyncio.create_task(emu.wait_for(USER, mine, within=2))
    await asyncio.sleep(0)
    for uid in OTHERS:  # fifty other chats get a message each: none of them concerns this waiter
        await call(emu, "sendMessage", chat_id=uid, text="not yours")
        await asyncio.sleep(0)
    await call(emu, "sendMessage", chat_id=USER, text="yours")
    assert (await waiting).text == "yours"
    # looked once when it started, once when its chat got a message: never for the other chats
    assert [s.text for s in looked_at] == ["earlier", "earlier", "yours"]


async def test_a_waiter_gives_up_after_within_seconds(emu: Emulator) -> None:
    with pytest.raises(TimeoutError):
        await emu.wait_for(USER, within=0.05)
    await call(emu, "sendMessage", chat_id=USER, text="late")
    assert emu._chat_waiters.get(USER, []) == []  # nothing left behind to wake


async def test_a_waiter_finds_a_matching_message_sent_before_it_started(emu: Emulator) -> None:
    await call(emu, "sendMessage", chat_id=USER, text="first")
    await call(emu, "sendMessage", chat_id=USER, text="second")
    assert (await emu.wait_for(USER, after=1)).text == "second"
    assert (await emu.wait_for(USER, lambda s: s.text == "first", within=0)).text == "first"
