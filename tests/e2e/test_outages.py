"""A real `keyshop run` living through outages: Telegram not there yet at start, the database away at
start and mid-run, Redis away mid-run. It keeps retrying with one log line per change, never exits, and
serves buyers once the dependency is back; /healthz says 503 then 200; /metrics parses; LOG_FORMAT=json
lines are JSON. A token Telegram refuses is no outage: one clear line and exit code 1.

Dependencies are taken away through a small TCP forwarder the test opens and closes (``Gate``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.logs import QUIET_LOGGERS
from sandbox.telegram import Emulator, serve
from tests.conftest import PG_SKIP_REASON, PG_URL, PROCESSES, make_db
from tests.e2e.conftest import TOKEN, Shop

pytestmark = PROCESSES

REDIS_URL = os.environ.get("TEST_REDIS_URL")
BUYER = 501
QUICK_RETRIES = {"OPS_RETRY_FIRST_SECONDS": "0.1", "OPS_RETRY_MAX_SECONDS": "0.3"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gate:
    """A TCP forwarder to ``target_port`` that the test opens and closes. Closed, it accepts and drops
    every connection at once (and drops those open), like a server that went away."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.open = False
        self.refused = 0  # connections dropped while closed
        self._refused = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> Gate:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def refusals(self, n: int, within: float = 30) -> None:
        """Until ``n`` connections were dropped while closed."""

        async def enough() -> None:
            while self.refused < n:
                self._refused.clear()
                await self._refused.wait()

        await asyncio.wait_for(enough(), within)

    def close(self) -> None:
        self.open = False
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    async def stop(self) -> None:
        self.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            self.refused += 1
            self._refused.set()
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()


class Running:
    """A `keyshop run` subprocess, its stderr read line by line as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process, ops_port: int) -> None:
        self.proc, self.ops_port = proc, ops_port
        self.lines: list[str] = []
        self._new = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.lines.append(line.decode(errors="replace").rstrip("\n"))
            self._new.set()

    def messages(self) -> list[str]:
        """Each JSON line's message (LOG_FORMAT=json)."""
        return [json.loads(line)["message"] for line in self.lines if line.startswith("{")]

    def count(self, start: str) -> int:
        return sum(m.startswith(start) for m in self.messages())

    async def wait_log(self, start: str, *, times: int = 1, within: float = 30) -> None:
        async def seen() -> None:
            while self.count(start) < times:
                if self.proc.returncode is not None:
                    raise AssertionError(f"keyshop run exited: {self.lines[-20:]}")
                self._new.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._new.wait(), 0.5)

        try:
            await asyncio.wait_for(seen(), within)
        except TimeoutError:
            raise AssertionError(f"never logged {start!r}: {self.lines[-30:]}") from None

    async def get(self, path: str) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{self.ops_port}{path}", timeout=aiohttp.ClientTimeout(total=5)) as r,
        ):
            return r.status, await r.text()

    async def health_becomes(self, status: int, within: float = 20) -> dict[str, Any]:
        async def poll() -> dict[str, Any]:
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    got, body = await self.get("/healthz")
                    if got == status:
                        return dict(json.loads(body))
                await asyncio.sleep(0.1)

        return await asyncio.wait_for(poll(), within)

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), 30)
        await self._reader
        return code


@contextlib.asynccontextmanager
async def keyshop_run(tmp_path: Path, **env: str) -> AsyncIterator[Running]:
    ops_port = free_port()
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "VAULT_KEYS", "WEBHOOK_URL", "REDIS_URL", "LOG_LEVEL")
    }
    base.update(
        BOT_TOKEN=TOKEN,
        DATA_DIR=str(tmp_path / "data"),
        ADMIN_IDS="1",
        LOG_FORMAT="json",
        OPS_LISTEN=f"127.0.0.1:{ops_port}",
        **QUICK_RETRIES,
        **env,
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env=base, stderr=asyncio.subprocess.PIPE
    )
    running = Running(proc, ops_port)
    try:
        yield running
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def served(emu: Emulator, text: str, expect: Callable[[str], bool], within: float = 20) -> None:
    before = len(emu.messages(BUYER))
    await emu.send_text(BUYER, text)
    reply = await emu.wait_for(BUYER, lambda s: expect(s.text), after=before, within=within)
    assert reply.text


def assert_clean(run: Running) -> None:
    """Every line JSON; no traceback; none of the libraries' routine chatter at INFO."""
    for line in run.lines:
        assert line.startswith("{"), line
        record = json.loads(line)
        assert {"time", "level", "logger", "message"} <= record.keys()
    text = "\n".join(run.lines)
    assert "Traceback" not in text
    for chatter in (
        "Adding job tentatively",
        "Added job",
        "Running job",
        "executed successfully",
        "Update id=",
    ):
        assert chatter not in text, chatter


# ---------------------------------------------------------------- Telegram


async def test_started_before_telegram_answers_it_waits_then_serves_with_health_metrics_and_json_logs(
    tmp_path: Path,
) -> None:
    port = free_port()
    emu = Emulator(token=TOKEN)
    runner = None
    # DEBUG: each try shows as "still unreachable" (at INFO and above only the changes do)
    async with keyshop_run(tmp_path, TELEGRAM_API_URL=f"http://127.0.0.1:{port}", LOG_LEVEL="DEBUG") as run:
        try:
            await run.wait_log("Telegram unreachable")
            body = await run.health_becomes(200)  # the database answers: nothing for a balancer to do
            assert body == {"status": "ok", "database": "ok"}
            await run.wait_log("Telegram still unreachable", times=3)
            runner, _ = await serve(emu, port=port)
            emu.user(BUYER, "Ann")
            await served(emu, "/start", lambda t: "Welcome" in t)
            await run.wait_log("Telegram reachable again")
            status, text = await run.get("/metrics")
            assert status == 200
            families = {f.name for f in text_string_to_metric_families(text)}
            assert {
                "keyshop_orders",
                "keyshop_outbox_pending",
                "keyshop_outbox_oldest_due_seconds",
                "keyshop_outbox_delivered",
                "keyshop_telegram_rate_limited",
                "keyshop_job_runs",
                "keyshop_job_failures",
                "keyshop_dependency_up",
            } <= families
            assert str(BUYER) not in text
        finally:
            code = await run.stop()
            await emu.shutdown()
            if runner is not None:
                await runner.cleanup()
    assert code == 0, run.lines[-20:]
    assert run.count("Telegram unreachable") == 1 and run.count("Telegram reachable again") == 1
    assert_clean(run)


def test_a_token_telegram_refuses_is_no_outage_it_ends_with_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In this process (what it shows is the exit code and the line, not the start-up): the CLI's own
    event loop, the emulator on another thread's."""
    from bot.cli import main

    emu = Emulator(token="1111111111:a-different-token-than-the-shop-has")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner, url = asyncio.run_coroutine_threadsafe(serve(emu), loop).result(10)
    for name in ("DATABASE_URL", "VAULT_KEYS", "WEBHOOK_URL", "REDIS_URL", "OPS_LISTEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": url,
        "DATA_DIR": str(tmp_path / "data"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    try:
        code = main(["run"])
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines()[-1].startswith(
        "error: setting BOT_TOKEN: Telegram refused the token (401 Unauthorized)"
    )
    assert "Traceback" not in err and "unreachable" not in err


# ---------------------------------------------------------------- the database


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason=PG_SKIP_REASON)
async def test_the_database_away_at_start_and_mid_run_is_waited_out_and_buyers_are_served_after(
    tmp_path: Path,
) -> None:
    assert PG_URL
    await (await make_db("postgresql", tmp_path, create=False)).dispose()  # an empty database
    pg = urlsplit(PG_URL)
    gate = await Gate(pg.port or 5432).start()
    through_gate = urlunsplit(pg._replace(netloc=re.sub(r":\d+$", "", pg.netloc) + f":{gate.port}"))
    emu = Emulator(token=TOKEN)
    runner, url = await serve(emu)
    emu.user(BUYER, "Ann")
    try:
        async with keyshop_run(tmp_path, TELEGRAM_API_URL=url, DATABASE_URL=through_gate) as run:
            try:
                await run.wait_log("database unreachable")
                await gate.refusals(4)  # several tries, one line
                gate.open = True
                await served(emu, "/start", lambda t: "Welcome" in t, within=30)
                assert run.count("database reachable again") == 1
                gate.close()  # mid-run
                assert (await run.health_becomes(503)) == {"status": "unavailable", "database": "unreachable"}
                await run.wait_log("database unreachable", times=2)
                # a buyer writing meanwhile is asked to try again in a minute (no traceback, no alert)
                await served(emu, "/catalog", lambda t: "briefly unavailable" in t)
                gate.open = True
                assert (await run.health_becomes(200))["database"] == "ok"
                await run.wait_log("database reachable again", times=2)
                await served(emu, "/help", lambda t: bool(t))
            finally:
                code = await run.stop()
    finally:
        await emu.shutdown()
        await runner.cleanup()
        await gate.stop()
    assert code == 0, run.lines[-20:]
    assert gate.refused >= 4
    assert run.count("database unreachable") == 2 and run.count("database reachable again") == 2
    assert_clean(run)


# ---------------------------------------------------------------- Redis


@pytest.mark.skipif(
    not REDIS_URL, reason="TEST_REDIS_URL is not set: Redis variant skipped (.ci/run sets it)"
)
async def test_redis_away_mid_run_buyers_are_still_served_and_health_says_so_until_it_is_back(
    tmp_path: Path,
) -> None:
    assert REDIS_URL
    redis = urlsplit(REDIS_URL)
    gate = await Gate(redis.port or 6379).start()
    gate.open = True
    through_gate = urlunsplit(redis._replace(netloc=re.sub(r":\d+$", "", redis.netloc) + f":{gate.port}"))
    emu = Emulator(token=TOKEN)
    runner, url = await serve(emu)
    emu.user(BUYER, "Ann")
    try:
        async with keyshop_run(tmp_path, TELEGRAM_API_URL=url, REDIS_URL=through_gate) as run:
            try:
                await served(emu, "/start", lambda t: "Welcome" in t, within=30)
                assert (await run.health_becomes(200)) == {"status": "ok", "database": "ok", "redis": "ok"}
                gate.close()
                await served(emu, "/catalog", lambda t: bool(t))  # conversation state in memory meanwhile
                await run.wait_log("Redis unreachable")
                assert (await run.health_becomes(503))["redis"] == "unreachable"
                gate.open = True
                assert (await run.health_becomes(200))["redis"] == "ok"
                await run.wait_log("Redis reachable again")
                await served(emu, "/help", lambda t: bool(t))
            finally:
                code = await run.stop()
    finally:
        await emu.shutdown()
        await runner.cleanup()
        await gate.stop()
    assert code == 0, run.lines[-20:]
    assert run.count("Redis unreachable") == 1 and run.count("Redis reachable again") == 1
    assert_clean(run)


# ---------------------------------------------------------------- the webhook server


async def test_the_webhook_server_answers_healthz_and_metrics_beside_the_webhook(shop: Shop) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from bot.app import webhook_app

    await shop.front.dp.stop_polling()  # a bot either polls or takes webhooks, never both
    app = webhook_app(shop.front, "s3cret-token", "/tg/hook")
    async with TestClient(TestServer(app)) as client:
        health = await client.get("/healthz")
        assert health.status == 200 and await health.json() == {"status": "ok", "database": "ok"}
        metrics = await client.get("/metrics")
        assert metrics.status == 200 and metrics.headers["Content-Type"].startswith("text/plain")
        names = {f.name for f in text_string_to_metric_families(await metrics.text())}
        assert {"keyshop_orders", "keyshop_outbox_pending", "keyshop_dependency_up"} <= names
        assert (await client.post("/tg/hook", data="{}")).status == 401  # the webhook itself: unchanged
