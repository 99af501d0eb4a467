"""What every command uses: the handler signature, plain output, and a shop opened for one command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from bot.runtime import close_shop, open_shop
from bot.settings import Settings
from core.services import Services

Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]
Subparsers = argparse._SubParsersAction  # what ``add_subparsers`` returns: each module adds its commands


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


async def with_shop(settings: Settings, fn: Callable[[Services], Awaitable[int]]) -> int:
    services = await open_shop(settings)
    try:
        return await fn(services)
    finally:
        await close_shop(services)
