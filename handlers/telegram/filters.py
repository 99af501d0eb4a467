"""Filters that run on the event loop.

aiogram awaits a filter that is a coroutine (a ``Filter`` subclass) but sends a plain callable, a bare
``F.…`` magic filter included, through ``asyncio.to_thread``: a trip to the thread pool and back for every
filter of every router an update passes. Under a burst of buyers those trips cost more CPU than the checks
themselves (and the thread pool is the one the rest of the process shares). ``When(F.…)`` checks the same
rule on the loop; ``tests/unit/test_dispatcher_on_loop.py`` fails while any filter or handler of the
storefront would run in a thread.
"""

from __future__ import annotations

from typing import Any

from aiogram.filters import Filter
from aiogram.types import TelegramObject
from magic_filter import MagicFilter


class When(Filter):
    """A magic filter, checked on the event loop: passes when ``rule`` resolves truthy on the event (a dict
    result is merged into the handler's arguments, as aiogram does with a bare magic filter)."""

    __slots__ = ("rule",)

    def __init__(self, rule: MagicFilter) -> None:
        self.rule = rule

    async def __call__(self, event: TelegramObject) -> Any:
        return self.rule.resolve(event)

    def __str__(self) -> str:
        return f"When({self.rule!r})"
