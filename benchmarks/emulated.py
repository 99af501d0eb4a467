"""The Bot API emulator and the simulated buyers in a process of their own, so the bot under test (in the
benchmark's main process) is charged only for its own work: its CPU time, measured in its own process, is
the bot's alone, and the buyers' waiting and the emulator's HTTP serving run on the other core.

The main process starts an :class:`EmulatorProcess`, points the bot at its URL, and asks it to run a
*scenario*: an async function ``scenario(emu, **kwargs)`` named as ``"module:function"``, run inside the
emulator's process against its :class:`TimedEmulator`; what it returns (plain data) comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import math
import traceback
from collections import defaultdict
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

from benchmarks.child import connect, start_child, stop_child
from sandbox.telegram import ApiError, Emulator, serve

TOKEN = "5555555555:BENCHMARK-token-for-the-emulator"


class TimedEmulator(Emulator):
    """The emulator, noting when each query reached the bot and when (and how) the bot answered it.

    Times are the emulator's ``clock``. A query is *issued* when the buyer acts (the tap, the payment), which
    is when Telegram's deadline starts; it is *handed* to the bot when ``getUpdates`` first returns it."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.handed: dict[str, float] = {}  # query id -> when getUpdates first returned it
        self.pre_checkout_issued: dict[str, float] = {}
        self.pre_checkout_of: dict[int, list[str]] = defaultdict(list)  # payer -> their queries
        # query id -> every answer the bot tried: (when, accepted, Telegram's error or "", text shown)
        self.answers: dict[str, list[tuple[float, bool, str, str]]] = defaultdict(list)
        self._answered: dict[str, asyncio.Future[None]] = {}
        # chat -> the bot's calls to it that Telegram refused: (method, error code)
        self.refused: dict[int, list[tuple[str, int]]] = defaultdict(list)

    async def call(self, token: str, method: str, params: dict[str, Any]) -> Any:
        try:
            return await super().call(token, method, params)
        except ApiError as e:
            with contextlib.suppress(TypeError, ValueError):
                self.refused[int(params.get("chat_id") or 0)].append((method, e.code))
            raise

    async def m_getupdates(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        updates = await super().m_getupdates(p)
        now = self.clock()
        for u in updates:
            query = u.get("callback_query") or u.get("pre_checkout_query")
            if query is not None:
                self.handed.setdefault(query["id"], now)
        return updates

    async def _push(self, **update: Any) -> dict[str, Any]:
        if query := update.get("pre_checkout_query"):
            self.pre_checkout_issued[query["id"]] = self.clock()
            self.pre_checkout_of[query["from"]["id"]].append(query["id"])
        return await super()._push(**update)

    def _answer(self, qid: str, text: str, answer: Callable[[], bool]) -> bool:
        now = self.clock()
        try:
            result = answer()
        except ApiError as e:
            self._note(qid, (now, False, e.description, text))
            raise
        self._note(qid, (now, True, "", text))
        return result

    def _note(self, qid: str, answer: tuple[float, bool, str, str]) -> None:
        self.answers[qid].append(answer)
        waiter = self._answered.pop(qid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def m_answercallbackquery(self, p: dict[str, Any]) -> bool:
        qid = str(p.get("callback_query_id") or "")
        text = str(p.get("text") or "")
        return self._answer(qid, text, lambda: super(TimedEmulator, self).m_answercallbackquery(p))

    def m_answerprecheckoutquery(self, p: dict[str, Any]) -> bool:
        qid = str(p.get("pre_checkout_query_id") or "")
        text = str(p.get("error_message") or "")
        return self._answer(qid, text, lambda: super(TimedEmulator, self).m_answerprecheckoutquery(p))

    async def answered(self, qid: str, within: float) -> list[tuple[float, bool, str, str]]:
        """The bot's answers to query ``qid`` (accepted or refused), waiting up to ``within`` seconds for the
        first one; empty if none came."""
        if not self.answers.get(qid):
            waiter = self._answered.setdefault(qid, asyncio.get_running_loop().create_future())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, within)
        return list(self.answers.get(qid, ()))


Scenario = Callable[..., Awaitable[Any]]


def _resolve(name: str) -> Scenario:
    module, _, attr = name.partition(":")
    fn: Scenario = getattr(importlib.import_module(module), attr)
    return fn


async def _serve(conn: Connection, emulator: dict[str, Any]) -> None:
    emu = TimedEmulator(token=TOKEN, **emulator)
    runner, url = await serve(emu)
    conn.send(url)
    loop = asyncio.get_running_loop()
    try:
        while True:
            request = await loop.run_in_executor(None, conn.recv)
            if request is None:
                return
            name, kwargs = request
            try:
                result = await _resolve(name)(emu, **kwargs)
            except Exception:
                conn.send(("error", traceback.format_exc()))
            else:
                conn.send(("ok", result))
    finally:
        await emu.shutdown()
        await runner.cleanup()


def child(address: str, authkey: str, emulator: str) -> None:
    """The emulator process's entry point (``EmulatorProcess`` starts it with ``python -c``)."""
    asyncio.run(_serve(connect(address, authkey), json.loads(emulator)))


class EmulatorProcess:
    """``async with EmulatorProcess(flood_limits=False) as emu_proc:`` – the emulator's HTTP server in a
    child process (``emu_proc.url``); ``await emu_proc.run("module:function", **kwargs)`` runs a scenario
    there and returns its result.

    The child is a fresh interpreter that imports only the emulator and the buyers (not the bot, nor
    whatever the benchmark's main module imports), talking over an authenticated local connection."""

    def __init__(self, **emulator: Any) -> None:
        self.emulator = emulator
        self.url = ""
        self._conn: Connection | None = None
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> EmulatorProcess:
        self._proc, self._conn = await start_child(
            "benchmarks.emulated", json.dumps(self.emulator), what="the emulator"
        )
        self.url = await self._recv()
        return self

    async def _recv(self) -> Any:
        assert self._conn is not None
        return await asyncio.get_running_loop().run_in_executor(None, self._conn.recv)

    async def run(self, scenario: str, **kwargs: Any) -> Any:
        assert self._conn is not None
        self._conn.send((scenario, kwargs))
        status, result = await self._recv()
        if status == "error":
            raise RuntimeError(f"scenario {scenario} failed in the emulator's process:\n{result}")
        return result

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await stop_child(self._proc, self._conn)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered), math.ceil(q / 100 * len(ordered))) - 1)]
