"""The real aiogram bot, long-polling the project's Bot API emulator over HTTP, against a fresh shop.

With ``KEYSHOP_E2E_DB_DIR`` set, each test's shop keeps its SQLite database in a directory of its own
there (named after the test) instead of the test's temporary directory, so that CI can run ``keyshop
ledger check`` on every database the tests leave behind (``.ci/run``). Unset, nothing is kept."""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import Storefront, make_bot
from bot.settings import Settings
from core.clock import ShiftedClock
from core.context import Context, ShopConfig
from core.services import Services
from core.services.catalog import ProductDraft
from core.vault import Vault, new_key_spec
from sandbox.telegram import Emulator, Sent, serve
from tests.conftest import make_db

TOKEN = "4242424242:E2E-test-token-for-the-emulator"
ADMIN = 900_001

# Jobs that message admins and distributors by the wall clock (at 09:00, on Mondays, a minute after a
# product sold out): left out of the test shop's scheduler, or they would speak into other tests' chats
# on some days only. Their own tests run them (tests/e2e/test_admin_jobs.py).
CALENDAR_JOBS = ("payout_run", "stock_alerts", "daily_summary")


def without_calendar_jobs(front: Storefront) -> Storefront:
    for name in CALENDAR_JOBS:
        front.scheduler.remove_job(name)
    return front


@dataclass
class Shop:
    emu: Emulator
    front: Storefront
    services: Services
    clock: ShiftedClock
    url: str

    async def rebuild(
        self,
        *,
        tap_rate: float | None = None,
        brisk: bool = False,
        sender: dict[str, object] | None = None,
        **settings: object,
    ) -> None:
        """Replace the bot with one built from other settings (the fixture stops whichever runs last).
        ``tap_rate``: button taps a person may make per second (the bot's default is 2, bursts of 8), for
        a test that walks many buttons and is not about the throttle; ``brisk``: a test that types and taps
        far faster than a person and is about neither the bot's throttle nor Telegram's per-chat pace (their
        own tests are): both raised to 100 a second, so a long walk does not wait a second per message;
        ``sender``: the outbox sender's options (e.g. a slower broadcast pace)."""
        await self.front.stop()
        values: dict[str, object] = {"admin_ids": [ADMIN], **settings}
        config = Settings.load(_env_file=None, **values)
        throttle = None
        if brisk:
            tap_rate = 100.0
            self.emu.per_chat_rate = self.emu.per_chat_burst = 100.0
        if tap_rate is not None:
            from bot.i18n import build_i18n
            from handlers.telegram.middlewares import ThrottleMiddleware

            rates = {"message_rate": tap_rate, "message_burst": tap_rate * 4} if brisk else {}
            throttle = ThrottleMiddleware(build_i18n(), rate=tap_rate, burst=tap_rate * 4, **rates)
        self.front = without_calendar_jobs(
            Storefront.build(
                self.services,
                config,
                make_bot(TOKEN, self.url),
                sender={"private_interval": 0.05, **(sender or {})},
                throttle=throttle,
            )
        )
        await self.front.start_background()
        await self.front.start_polling()

    async def product(self, keys: int = 0, **draft: object) -> int:
        fields: dict[str, object] = {"name": "Steam 10", "price": 990, "price_stars": 50, "max_qty": 5}
        fields.update(draft)
        pid = await self.services.catalog.add_product(ProductDraft(**fields))  # type: ignore[arg-type]
        if keys:
            data = "".join(f"KEY-{pid}-{i:04d}\n" for i in range(keys)).encode()
            await self.services.stock.import_keys(pid, io.BytesIO(data))
        return pid

    async def say(self, user: int, text: str) -> Sent:
        """Send text as the user; the bot's first reply."""
        before = len(self.emu.messages(user))
        await self.emu.send_text(user, text)
        return await self.emu.wait_for(user, after=before)

    async def tap(self, user: int, sent: Sent, label: str) -> Sent:
        """Tap the button whose label contains ``label``; the bot's next message or edit."""
        before = len(self.emu.messages(user))
        await self.emu.tap(user, sent, sent.button(label)["callback_data"])
        return await self.emu.wait_for(user, after=before)

    async def tap_data(self, user: int, sent: Sent, data: str) -> str:
        """Send arbitrary callback data (a forged or stale button); returns the query id."""
        return await self.emu.tap(user, sent, data)

    async def answer_to(self, qid: str, within: float = 5.0) -> dict[str, object]:
        import asyncio

        for _ in range(int(within / 0.02)):
            if qid in self.emu.callback_answers:
                return self.emu.callback_answers[qid]
            await asyncio.sleep(0.02)
        raise AssertionError("the bot never answered the callback query")

    async def buy_one(self, user: int, product_name: str = "Steam") -> Sent:
        """/catalog → product → Buy 1: two taps from the list to the invoice."""
        listing = await self.say(user, "/catalog")
        card = await self.tap(user, listing, product_name)
        return await self.tap(user, card, "Buy")


async def shop_emulator_shutdown(emu: Emulator) -> None:
    await emu.shutdown()


class _Errors(logging.Handler):
    """Every ERROR (or worse) logged anywhere while a test runs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logged_errors() -> Iterator[_Errors]:
    handler = _Errors()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


KEEP_DB_DIR = "KEYSHOP_E2E_DB_DIR"


def database_dir(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """Where a test's shop keeps its SQLite file: its temporary directory, or with ``KEYSHOP_E2E_DB_DIR``
    set, a fresh directory there named after the test, left behind for ``keyshop ledger check``."""
    keep = os.environ.get(KEEP_DB_DIR)
    if not keep:
        return tmp_path
    where = Path(keep) / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid).strip("_")[-200:]
    shutil.rmtree(where, ignore_errors=True)  # a database of an earlier run would be checked as this one
    where.mkdir(parents=True)
    return where


@pytest.fixture
async def shop(tmp_path: Path, request: pytest.FixtureRequest, logged_errors: _Errors) -> AsyncIterator[Shop]:
    """The shop, with Telegram's flood limits on (the emulator's defaults). The test fails if the bot
    logged an error or alerted the admins, unless it is marked ``expect_errors``."""
    db = await make_db("sqlite", database_dir(tmp_path, request))
    clock = ShiftedClock()
    services = Services(Context(db, Vault.from_spec(new_key_spec()), ShopConfig(currency="USD"), clock))
    emu = Emulator(token=TOKEN)
    runner, url = await serve(emu)
    emu.user(ADMIN, "Admin")
    settings = Settings.load(_env_file=None, admin_ids=[ADMIN], data_dir=tmp_path)
    front = without_calendar_jobs(
        Storefront.build(services, settings, make_bot(TOKEN, url), sender={"private_interval": 0.05})
    )
    await front.start_background()
    await front.start_polling()
    shop = Shop(emu, front, services, clock, url)
    try:
        yield shop
    finally:
        await shop_emulator_shutdown(emu)
        await shop.front.stop()
        await runner.cleanup()
        await db.dispose()
    if request.node.get_closest_marker("expect_errors") is None:
        errors = [f"{r.name}: {r.getMessage()}" for r in logged_errors.records]
        alerts = [s.text for s in emu.messages(ADMIN)]
        assert not errors, f"the bot logged errors: {errors}"
        assert not alerts, f"the admins were alerted: {alerts}"
