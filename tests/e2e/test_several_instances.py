"""Several instances: real ``keyshop run`` processes in webhook mode behind one webhook URL, on one
PostgreSQL database and one Redis, with the Bot API emulator playing Telegram and the load balancer in front
of them (``Emulator(webhook_backends=...)``), each update going to the next instance in turn.

Buyers buying at once are each served on whichever instance their update lands, every paid order is
delivered exactly once (a payment Telegram sends twice included), no update is lost, a conversation started
on one instance goes on on the other (FSM state in Redis), and a user flooding both is throttled as one.

``instances`` starts any number of them with extra settings (``await instances.start(2, SCHEDULER="off")``):
a check of what the schedulers of several instances do adds its own test with the same fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from core import migrate
from core import tables as t
from core.context import Context, ShopConfig
from core.db import Database
from core.messages import KeysDelivered
from core.models import OrderStatus
from core.services import Services
from core.services.catalog import ProductDraft
from core.vault import Vault, new_key_spec
from sandbox.telegram import Emulator, Sent, serve
from tests.conftest import PROCESSES, make_db, query, seed_memberships
from tests.e2e.conftest import TOKEN

PG_URL = os.environ.get("TEST_DATABASE_URL")
REDIS_URL = os.environ.get("TEST_REDIS_URL")
pytestmark = [
    PROCESSES,
    pytest.mark.postgres,
    pytest.mark.skipif(
        not (PG_URL and REDIS_URL),
        reason="several instances need PostgreSQL and Redis: TEST_DATABASE_URL and TEST_REDIS_URL unset "
        "(.ci/run sets them)",
    ),
]

ADMIN = 900_001
WEBHOOK_URL = "https://shop.example.com/tg/hook"  # the balancer's: TLS ends there, instances speak http
SECRET = "several-instances-secret"  # the same on every instance: Telegram sends one
KEY_RE = re.compile(r"KEY-\d+-\d{4}")
START_WITHIN = 25.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Instance:
    process: asyncio.subprocess.Process
    backend: str  # where the balancer reaches it: http://127.0.0.1:PORT
    log_path: Path
    log: IO[bytes]

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")


@dataclass
class Instances:
    """The emulator (Telegram and the balancer), the shop's database as the test sees it, and the running
    ``keyshop run`` processes."""

    emu: Emulator
    api_url: str
    services: Services
    vault_spec: str
    tmp_path: Path
    running: list[Instance] = field(default_factory=list)

    async def start(self, n: int = 2, **env: str) -> list[Instance]:
        """Start ``n`` more instances with these extra settings (environment variables), each listening on
        a port of its own for the one webhook URL, and put them behind the balancer; returns them once
        each is listening and the webhook is set."""
        started = [self._spawn(len(self.running) + i, env) for i in range(n)]
        self.running.extend(await asyncio.gather(*started))
        self.emu.balance_webhook([i.backend for i in self.running])
        await self._until_ready(self.running)
        return self.running[-n:]

    async def _spawn(self, index: int, extra: dict[str, str]) -> Instance:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WEBHOOK_", "REDIS_", "DATABASE_"))}
        assert PG_URL and REDIS_URL
        env.update(
            BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=self.api_url,
            DATABASE_URL=PG_URL,
            REDIS_URL=REDIS_URL,
            VAULT_KEYS=self.vault_spec,
            WEBHOOK_URL=WEBHOOK_URL,
            WEBHOOK_SECRET=SECRET,
            WEBHOOK_LISTEN=f"127.0.0.1:{port}",
            ADMIN_IDS=str(ADMIN),
            DATA_DIR=str(self.tmp_path / f"instance-{index}"),
            **extra,
        )
        log_path = self.tmp_path / f"instance-{index}.log"
        log = log_path.open("wb")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=self.tmp_path, env=env, stdout=log, stderr=log
        )
        return Instance(process, f"http://127.0.0.1:{port}", log_path, log)

    async def _until_ready(self, instances: list[Instance]) -> None:
        deadline = time.monotonic() + START_WITHIN
        pending = list(instances)
        while pending:
            for inst in pending:
                if inst.process.returncode is not None:
                    raise AssertionError(f"an instance exited at start:\n{inst.log_text()[-3000:]}")
            ready = [inst for inst in pending if await _listening(inst.backend)]
            pending = [inst for inst in pending if inst not in ready]
            if pending and time.monotonic() > deadline:
                log = pending[0].log_text()[-3000:]
                raise AssertionError(f"not listening after {START_WITHIN} s:\n{log}")
            if pending:
                await asyncio.sleep(0.1)
        while self.emu._webhook is None:  # the last one's setWebhook may still be on its way
            if time.monotonic() > deadline:
                raise AssertionError("no instance set the webhook")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        for inst in self.running:
            if inst.process.returncode is None:
                inst.process.terminate()
        for inst in self.running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(inst.process.wait(), 15)
            if inst.process.returncode is None:
                inst.process.kill()
                await inst.process.wait()
            inst.log.close()

    def errors(self) -> list[str]:
        """ERROR lines and tracebacks any instance logged."""
        return [
            line
            for inst in self.running
            for line in inst.log_text().splitlines()
            if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
        ]


async def _listening(backend: str) -> bool:
    host, port = backend.removeprefix("http://").split(":")
    try:
        _, writer = await asyncio.open_connection(host, int(port))
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


@pytest.fixture
async def instances(tmp_path: Path) -> AsyncIterator[Instances]:
    """An empty shop on the test's PostgreSQL database (migrated here, so instances starting together do
    not race to migrate it) and the test's Redis database (emptied), the emulator serving, no instance yet."""
    assert REDIS_URL
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    db: Database = await make_db("postgresql", tmp_path, create=False)
    await migrate.upgrade(db)
    spec = new_key_spec()
    services = Services(Context(db, Vault.from_spec(spec), ShopConfig(currency="USD")))
    emu = Emulator(token=TOKEN)
    emu.user(ADMIN, "Admin")
    runner, url = await serve(emu)
    cluster = Instances(emu, url, services, spec, tmp_path)
    try:
        yield cluster
    finally:
        await cluster.stop()
        await emu.shutdown()
        await runner.cleanup()
        await db.dispose()


async def _product(services: Services, keys: int) -> int:
    pid = await services.catalog.add_product(ProductDraft(name="Steam 10", price=990, price_stars=50))
    data = "".join(f"KEY-{pid}-{i:04d}\n" for i in range(keys)).encode()
    await services.stock.import_keys(pid, io.BytesIO(data))
    return pid


async def _say(emu: Emulator, user: int, text: str, within: float = 10.0) -> Sent:
    before = len(emu.messages(user))
    await emu.send_text(user, text)
    return await emu.wait_for(user, after=before, within=within)


async def _tap(emu: Emulator, user: int, sent: Sent, label: str, within: float = 10.0) -> Sent:
    before = len(emu.messages(user))
    await emu.tap(user, sent, sent.button(label)["callback_data"])
    return await emu.wait_for(user, after=before, within=within)


def _has(sent: Sent, label: str) -> bool:
    return any(label in b["text"] for b in sent.buttons)


async def _settled(services: Services, emu: Emulator, within: float = 15.0) -> None:
    """Until every update was taken and every outbox message sent."""
    deadline = time.monotonic() + within
    while True:
        [(unsent,)] = await query(
            services, select(func.count()).select_from(t.outbox).where(t.outbox.c.status != "sent")
        )
        if unsent == 0 and not emu._pending():
            return
        if time.monotonic() > deadline:
            waiting = len(emu._pending())
            raise AssertionError(f"not settled: {unsent} outbox messages unsent, {waiting} updates waiting")
        await asyncio.sleep(0.1)


BUYERS = list(range(601, 609))


async def test_two_instances_behind_one_webhook_serve_buyers_once_share_conversations_and_throttle(
    instances: Instances,
) -> None:
    emu, services = instances.emu, instances.services
    await _product(services, keys=len(BUYERS) + 2)
    first, second = await instances.start(2)

    # Buyers at once, each update going to the next instance: browse, buy, pay in Stars, get the keys. Each
    # successful payment comes twice in a row (Telegram may resend it): two instances handle it at once.
    async def buy(uid: int) -> None:
        emu.user(uid, f"Buyer {uid}")
        # Each step waits for the message it needs: on a loaded machine an instance may answer late
        # enough for the balancer to time out and Telegram to deliver an update again, as it does.
        before = len(emu.messages(uid))
        await emu.send_text(uid, "/catalog")
        listing = await emu.wait_for(uid, lambda s: _has(s, "Steam"), after=before, within=10)
        before = len(emu.messages(uid))
        await emu.tap(uid, listing, listing.button("Steam")["callback_data"])
        card = await emu.wait_for(uid, lambda s: _has(s, "Buy"), after=before, within=10)
        before = len(emu.messages(uid))
        await emu.tap(uid, card, card.button("Buy")["callback_data"])
        invoice = await emu.wait_for(uid, lambda s: s.method == "sendInvoice", after=before, within=10)
        paid = await emu.pay(uid, invoice)
        assert paid["paid"], paid
        await emu.deliver_payment(uid, paid["charge_id"])
        await emu.wait_for(uid, lambda s: bool(KEY_RE.search(s.text)), within=15)

    await asyncio.gather(*(buy(uid) for uid in BUYERS))
    await _settled(services, emu)

    for uid in BUYERS:  # every answer came (the waits above), and the keys exactly once
        assert len([s for s in emu.messages(uid) if KEY_RE.search(s.text)]) == 1, emu.messages(uid)
    orders = await query(services, select(t.orders.c.status))
    assert sorted(o.status for o in orders) == [OrderStatus.DELIVERED.value] * len(BUYERS)
    deliveries = await query(services, select(t.outbox.c.status).where(t.outbox.c.kind == KeysDelivered.KIND))
    assert [d.status for d in deliveries] == ["sent"] * len(BUYERS)
    taken = [update_id for update_id, _ in emu.webhook_deliveries]
    assert sorted(taken) == list(range(1, max(taken) + 1))  # every update taken, none twice
    by = {url for _, url in emu.webhook_deliveries}
    assert by == {f"{first.backend}/tg/hook", f"{second.backend}/tg/hook"}

    # A conversation started on one instance goes on on the other: its state is in Redis.
    emu.balance_webhook([first.backend])
    screen = await _say(emu, ADMIN, "/broadcast")
    asked = await _tap(emu, ADMIN, screen, "active lately")
    assert "how many days" in asked.text
    emu.balance_webhook([second.backend])
    ask_text = await _say(emu, ADMIN, "30")
    assert "Send the text" in ask_text.text, ask_text.text
    emu.balance_webhook([first.backend])
    preview = await _say(emu, ADMIN, "Hello <b>buyers</b>")
    assert preview.text == "Hello buyers", preview.text

    # A change made on one instance is seen on the other at once: someone the second has cached (as a
    # newcomer) picks Chinese on the first, which forgets the cached entry for both (it is in Redis).
    buyer = 660
    emu.user(buyer, "Lei")
    emu.balance_webhook([second.backend])
    assert "How it works" in (await _say(emu, buyer, "/help")).text
    emu.balance_webhook([first.backend])
    choose = await _say(emu, buyer, "/language")
    assert (await _tap(emu, buyer, choose, "简体中文")).text == "已切换为简体中文。"
    emu.balance_webhook([second.backend])
    assert "购买流程" in (await _say(emu, buyer, "/help")).text
    emu.balance_webhook([first.backend, second.backend])

    # A user flooding both instances is throttled as one: taps (2 a second, bursts of 8) that would pass
    # two separate throttles (8 each) are refused beyond the one burst.
    flooder, taps = 650, 24
    emu.user(flooder, "Flo")
    listing = await _say(emu, flooder, "/catalog")
    data = listing.button("Steam")["callback_data"]
    began = time.monotonic()
    queries = [await emu.tap(flooder, listing, data) for _ in range(taps)]
    deadline = time.monotonic() + 15
    while not all(q in emu.callback_answers for q in queries):
        assert time.monotonic() < deadline, "some taps were never answered"
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - began
    refused = [q for q in queries if "slow down" in str(emu.callback_answers[q]["text"])]
    allowed = taps - len(refused)
    assert allowed <= 8 + 2 * elapsed + 1, (allowed, elapsed)
    flood = {url for _, url in emu.webhook_deliveries[-taps:]}
    assert len(flood) == 2  # both instances took part of the flood

    assert instances.errors() == []


MEMBERS, MEMBER_CHAT = 60, 700_000


async def test_two_instances_remind_each_member_once(instances: Instances) -> None:
    """Both instances run the scheduler (the default) and send messages: members whose code ends within a
    day are each reminded exactly once, whichever instance claimed and whichever sent."""
    emu, services = instances.emu, instances.services
    ends = datetime.now(UTC) + timedelta(hours=20)  # the processes run on the real clock
    members = await seed_memberships(services, MEMBERS, ends_at=ends, first_chat=MEMBER_CHAT)
    for i in range(MEMBERS):
        emu.user(MEMBER_CHAT + i, f"Member {i}")
    await instances.start(2)
    deadline = time.monotonic() + 20
    while not all(emu.messages(MEMBER_CHAT + i) for i in range(MEMBERS)):
        assert time.monotonic() < deadline, "not every member was reminded"
        await asyncio.sleep(0.1)
    await _settled(services, emu)
    await asyncio.sleep(1.0)  # time for a duplicate to show, if any were coming
    for i, ref in enumerate(members):
        said = [m.text for m in emu.messages(MEMBER_CHAT + i)]
        assert len(said) == 1 and ref in said[0], said
    ran = await query(services, select(t.job_runs.c.runs).where(t.job_runs.c.name == "remind_memberships"))
    assert ran[0][0] >= 2  # both instances ran the job
    assert instances.errors() == []
