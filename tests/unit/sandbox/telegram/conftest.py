"""Helpers for the emulator's own suite: one emulator, a user who started the bot, and calls by name."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.telegram import ApiError, Emulator

TOKEN = "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ"
USER = 1


async def call(emu: Emulator, method: str, **params: Any) -> Any:
    return await emu.call(TOKEN, method, dict(params))


async def refused(emu: Emulator, method: str, **params: Any) -> ApiError:
    """The error Telegram (the emulator) answers ``method`` with; fails the test if it is accepted."""
    with pytest.raises(ApiError) as e:
        await call(emu, method, **params)
    return e.value


@pytest.fixture
def emu() -> Emulator:
    e = Emulator(flood_limits=False)
    e.user(USER, "Ann")
    return e
