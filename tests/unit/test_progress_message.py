"""A progress message is edited at most every 2 s (measured from the end of the previous edit), never with
the text it already shows, and the outcome comes last, after the interval too."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import EditMessageText
from aiogram.types import Message

from handlers.telegram.admin.progress import ProgressMessage


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeMessage:
    """The bot's message: records each edit with the clock's time (``gone``: it can no longer be edited)."""

    message_id = 7

    def __init__(self, clock: Clock, *, gone: bool = False) -> None:
        self.clock, self.gone = clock, gone
        self.edits: list[tuple[float, str]] = []
        self.answers: list[str] = []

    async def edit_text(self, text: str, **_: Any) -> None:
        if self.gone:
            raise TelegramBadRequest(EditMessageText(text=text), "Bad Request: message to edit not found")
        await asyncio.sleep(0)
        self.edits.append((self.clock(), text))

    async def answer(self, text: str, **_: Any) -> None:
        self.answers.append(text)


def _progress(clock: Clock, message: FakeMessage) -> ProgressMessage:
    return ProgressMessage(cast(Message, message), "starting", clock=clock)


async def test_figures_are_shown_only_when_two_seconds_passed_since_the_last_showing() -> None:
    clock = Clock()
    msg = FakeMessage(clock)
    progress = _progress(clock, msg)
    clock.now += 1.9
    progress.offer("10 keys")  # too soon after sending it
    await asyncio.sleep(0.01)
    clock.now += 0.1
    progress.offer("20 keys")
    progress.offer("30 keys")  # the edit of "20 keys" is on its way
    await asyncio.sleep(0.01)
    clock.now += 1.0
    progress.offer("40 keys")
    clock.now += 1.0
    progress.offer("50 keys")
    await asyncio.sleep(0.01)
    assert msg.edits == [(102.0, "20 keys"), (104.0, "50 keys")]


async def test_the_same_text_is_never_sent_again() -> None:
    clock = Clock()
    msg = FakeMessage(clock)
    progress = _progress(clock, msg)
    clock.now += 5
    progress.offer("starting")
    await asyncio.sleep(0.01)
    assert msg.edits == []


async def test_the_outcome_waits_out_the_interval_after_the_last_edit() -> None:
    clock = Clock()
    msg = FakeMessage(clock)
    progress = _progress(clock, msg)
    clock.now += 2
    progress.offer("10 keys")
    await asyncio.sleep(0.01)

    async def time_passes() -> None:
        for _ in range(30):
            await asyncio.sleep(0.01)
            clock.now += 0.25

    await asyncio.gather(progress.finish("done"), time_passes())
    (first, _), (last, text) = msg.edits
    assert text == "done" and last - first >= 2.0


async def test_an_outcome_that_cannot_be_edited_in_is_sent_as_a_new_message() -> None:
    clock = Clock()
    msg = FakeMessage(clock, gone=True)
    progress = _progress(clock, msg)
    clock.now += 2
    await progress.finish("done")
    assert msg.answers == ["done"]
