"""The journey's echo, the storefront benchmark's anchor: a bare aiogram bot with no database that answers
each update of the journey with the Bot API calls keyshop made for it, the buyer's chat, query and tapped
message filled in.

It runs in a process of its own, started by ``storefront.py`` with ``python -m benchmarks.echo_bot URL``:
a fresh interpreter that imports aiogram and nothing of keyshop, as a bare bot's process would. (In the
benchmark's own process it would carry keyshop's modules on its heap, and every full collection of
Python's garbage collector would walk them: a handicap a bare bot does not have.) Python's collector keeps
its default settings: this is the bot as one writes it with aiogram. With ``--settled`` it is set as
keyshop sets its own once it is up (``bot.heap``, a module that imports nothing else), to show how much of
keyshop's lead is that setting.

Protocol, one line each way: the first line on stdin is the JSON ``{"calls": ..., "placeholders": ...}``;
the bot answers ``ready`` once it polls. Then ``cpu`` is answered with this process's CPU seconds so far,
``stop`` stops polling and ends the process.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from aiogram import Bot, Dispatcher, methods
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.methods.base import Response, TelegramMethod
from aiogram.types import CallbackQuery, Message, PreCheckoutQuery

from benchmarks.child import ROOT

# The emulator's token (benchmarks.emulated.TOKEN; not imported, so that this process stays bare).
TOKEN = "5555555555:BENCHMARK-token-for-the-emulator"
METHODS: dict[str, type[TelegramMethod[Any]]] = {
    name.lower(): getattr(methods, name) for name in methods.__all__ if name[0].isupper()
}
Calls = dict[str, list[tuple[str, dict[str, Any]]]]


def echo_dispatcher(calls: Calls, chat: str, query: str, message: str) -> Dispatcher:
    """A dispatcher answering each update of the journey with the calls keyshop made for it; ``chat``,
    ``query`` and ``message`` are the placeholders the recording put in place of the buyer's ids."""
    dp = Dispatcher()

    async def replay(
        bot: Bot, key: str, chat_id: int, query_id: str | None = None, message_id: int | None = None
    ) -> None:
        fill = {chat: chat_id, query: query_id, message: message_id}
        for method, params in calls.get(key, ()):
            values = {k: fill[v] if isinstance(v, str) and v in fill else v for k, v in params.items()}
            await bot(METHODS[method.lower()].model_validate(values))

    @dp.message()
    async def on_message(m: Message, bot: Bot) -> None:
        key = "successful_payment" if m.successful_payment else f"text:{m.text}"
        await replay(bot, key, m.chat.id)

    @dp.callback_query()
    async def on_tap(q: CallbackQuery, bot: Bot) -> None:
        tapped = q.message.message_id if q.message else None
        await replay(bot, f"callback:{q.data}", q.from_user.id, q.id, tapped)

    @dp.pre_checkout_query()
    async def on_pre_checkout(q: PreCheckoutQuery, bot: Bot) -> None:
        await replay(bot, "pre_checkout_query", q.from_user.id, q.id)

    return dp


async def serve(api_url: str, settled: bool) -> None:
    loop = asyncio.get_running_loop()
    spec = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_url))
    bot = Bot(TOKEN, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))  # as keyshop's
    dp = echo_dispatcher(spec["calls"], *spec["placeholders"])
    # pydantic caches aiogram's parametrized ``Response[...]`` classes only weakly: without a strong
    # reference each is collected and rebuilt over and over (keyshop holds its own, in ``bot.app``). A bare
    # bot would pay for that too; the anchor does not, so that the bots' own work is what is compared.
    used = {m.lower() for calls in spec["calls"].values() for m, _ in calls} | {"getupdates"}
    held = [Response[METHODS[m].__returning__] for m in used]  # type: ignore[misc]
    if settled:
        from bot.heap import settle_heap

        settle_heap()
    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=10))
    print("ready", flush=True)
    try:
        while (command := (await loop.run_in_executor(None, sys.stdin.readline)).strip()) not in ("stop", ""):
            if command == "cpu":
                print(time.process_time(), flush=True)
    finally:
        await dp.stop_polling()
        await asyncio.gather(polling, return_exceptions=True)
        await bot.session.close()
        held.clear()


class EchoProcess:
    """``async with EchoProcess(api_url, calls, placeholders) as echo:`` the echo bot polling ``api_url``
    from a process of its own (``settled``: its collector set as keyshop's); ``await echo.cpu()`` is that
    process's CPU seconds so far."""

    def __init__(
        self, api_url: str, calls: Calls, placeholders: tuple[str, str, str], *, settled: bool = False
    ) -> None:
        self.api_url, self.calls, self.placeholders = api_url, calls, placeholders
        self.settled = settled
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> EchoProcess:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.echo_bot",
            self.api_url,
            *(["--settled"] if self.settled else []),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        await self._say(json.dumps({"calls": self.calls, "placeholders": self.placeholders}))
        if await self._hear() != "ready":
            raise RuntimeError("the echo bot's process did not start")
        return self

    async def cpu(self) -> float:
        await self._say("cpu")
        return float(await self._hear())

    async def _say(self, line: str) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(line.encode() + b"\n")
        await self._proc.stdin.drain()

    async def _hear(self) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        return (await self._proc.stdout.readline()).decode().strip()

    async def __aexit__(self, *exc: object) -> None:
        if self._proc is None or self._proc.returncode is not None:
            return
        try:
            await self._say("stop")
            await asyncio.wait_for(self._proc.wait(), 10)
        except (TimeoutError, ConnectionError):
            self._proc.kill()
            await self._proc.wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], "--settled" in sys.argv[2:]))
