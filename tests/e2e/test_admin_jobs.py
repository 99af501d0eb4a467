"""The admins' jobs end to end through the emulator, each run as the scheduler runs it (the job's wrapper
over the shop's services) with the shop's clock shifted: owners get yesterday's summary as a photo with the
sales chart, in Chinese for a Chinese owner; a distributor is told at the payout run and taps through to a
withdrawal request, after which the owners get the payout queue; an owner gets a low-stock alert once
however often the job looks.

The owners are set in the core as ``bot.runtime.shop_config`` sets them from ADMIN_IDS (the fixture's
services are built without owners). The fixture's ADMIN is not one of them: the fixture fails a test in
which ADMIN got a message."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import replace
from datetime import time

from sqlalchemy import update

from core import tables as t
from core.models import STARS
from handlers.charts import HEIGHT_PX, WIDTH_PX
from sandbox.telegram import Sent
from scheduler.jobs import daily_summary, payout_run, stock_alerts
from scheduler.spec import JobContext, Schedule
from tests.e2e.conftest import ADMIN, Shop

OWNER_EN, OWNER_ZH, DIST, BUYER = 900_003, 900_004, 811, 812


async def _owners(shop: Shop, *owners: int) -> None:
    shop.services.ctx.config = replace(shop.services.ctx.config, owner_ids=tuple(map(str, owners)))
    await shop.rebuild(admin_ids=[ADMIN, *owners], brisk=True)


async def _sell(shop: Shop, pid: int, buyer: int = BUYER, currency: str = STARS) -> None:
    """A paid and delivered order, straight through the services (the storefront's part is tested
    elsewhere); the buyer's keys arrive."""
    s = shop.services
    user = await s.users.ensure("telegram", str(buyer))
    order = await s.checkout.checkout(user.id, pid, 1, currency)
    await s.payments.confirm_payment("telegram", f"ch-{order.ref}", order.ref, order.amount, currency)
    await shop.emu.wait_for(buyer, lambda m: "KEY-" in m.text)


async def _drained(shop: Shop) -> None:
    """Until the outbox has nothing left to send (bounded)."""
    for _ in range(500):
        if not await shop.services.ctx.read(lambda uow: uow.repo.outbox.pending()):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the outbox never drained")


def _png_size(shop: Shop, photo: Sent) -> tuple[int, int]:
    png = shop.emu.files[photo.message["photo"][-1]["file_id"]][1]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


async def test_owners_get_yesterdays_summary_with_its_chart_in_their_language_once(shop: Shop) -> None:
    shop.emu.user(OWNER_EN, "Owen", "en")
    shop.emu.user(OWNER_ZH, "Zhou", "zh-hans")
    shop.emu.user(BUYER, "Ann")
    await _owners(shop, OWNER_EN, OWNER_ZH)
    # The Chinese owner has a row (an earlier message to the admins made it) and has talked to the bot
    # since: their row follows their Telegram language.
    await shop.services.users.ensure("telegram", str(OWNER_ZH))
    await shop.say(OWNER_ZH, "/start")
    pid = await shop.product(keys=3, name="网飞会员 <VIP> & 月卡", low_stock_threshold=2)
    await _sell(shop, pid)
    shop.clock.advance(days=1)  # that sale was yesterday
    ctx = JobContext(shop.services, schedule=Schedule(summary_time=time(0, 0)))
    assert await daily_summary(ctx) == 2
    assert await daily_summary(ctx) == 0  # once per date

    zh = await shop.emu.wait_for(OWNER_ZH, lambda m: m.method == "sendPhoto", within=30)
    assert zh.text.startswith("🗓 每日汇总：") and "销售额：50 ⭐" in zh.text and "新买家：1" in zh.text
    assert "当前库存不足（1）" in zh.text and "网飞会员 <VIP> & 月卡：剩 2 个" in zh.text
    assert _png_size(shop, zh) == (WIDTH_PX, HEIGHT_PX)
    en = await shop.emu.wait_for(OWNER_EN, lambda m: m.method == "sendPhoto", within=30)
    assert en.text.startswith("🗓 Daily summary:") and "Revenue: 50 ⭐" in en.text
    assert "Orders: 1 · Units: 1 · New buyers: 1" in en.text and "Manual orders waiting now: 0" in en.text
    assert _png_size(shop, en) == (WIDTH_PX, HEIGHT_PX)
    await _drained(shop)
    assert [m.method for m in shop.emu.messages(OWNER_EN)] == ["sendPhoto"]


async def _distributor_with_settled_commission(shop: Shop) -> None:
    """DIST referred BUYER, who bought a 120.00 USD key; the holding period passed (the clock shifted) and
    12.00 USD of commission settled: available to withdraw."""
    s = shop.services
    dist = (await s.users.ensure("telegram", str(DIST))).id
    buyer = (await s.users.ensure("telegram", str(BUYER))).id
    stmt = update(t.users).where(t.users.c.id == buyer).values(referrer_id=dist)
    await s.ctx.db.run_committed(lambda conn: conn.execute(stmt))
    await _sell(shop, await shop.product(keys=1, name="Gift card", price=12_000), currency="USD")
    shop.clock.advance(days=7)
    assert await s.ledger.settle() == 1


async def test_a_distributor_is_told_at_the_payout_run_and_taps_through_to_withdraw(shop: Shop) -> None:
    for tg, name in ((OWNER_EN, "Owen"), (DIST, "Dora"), (BUYER, "Ann")):
        shop.emu.user(tg, name)
    await _owners(shop, OWNER_EN)
    await _distributor_with_settled_commission(shop)
    ctx = JobContext(shop.services, schedule=Schedule(payout_schedule="* * * * *"))  # a slot this minute
    assert await payout_run(ctx) == 1  # DIST; the queue is empty: no word to the owner
    assert await payout_run(ctx) == 0  # once per slot

    told = await shop.emu.wait_for(DIST, lambda m: "available to withdraw" in m.text)
    assert "$12.00" in told.text
    screen = await shop.tap(DIST, told, "Withdraw")
    assert "Withdraw commission" in screen.text and "$12.00: ready to withdraw" in screen.text
    ask = await shop.tap(DIST, screen, "Withdraw $12.00")
    assert "Where should the admin pay you?" in ask.text
    confirm = await shop.say(DIST, "PayPal dora@example.com")
    done = await shop.tap(DIST, confirm, "Confirm the withdrawal")
    assert "Withdrawal request #1 sent" in done.text

    shop.clock.advance(minutes=1)  # the next slot: DIST asked already; the owner hears of the queue
    assert await payout_run(ctx) == 1
    queue = await shop.emu.wait_for(OWNER_EN, lambda m: "Payout queue" in m.text)
    assert "Withdrawal requests waiting: 1" in queue.text and "To pay: $12.00" in queue.text
    opened = await shop.tap(OWNER_EN, queue, "Open the payout queue")
    assert "Withdrawal requests" in opened.text and "PayPal dora@example.com" in opened.text
    assert await shop.services.ledger.check() == []


async def test_an_owner_gets_a_low_stock_alert_once_across_job_runs_and_opens_the_stock(shop: Shop) -> None:
    shop.emu.user(OWNER_EN, "Owen")
    shop.emu.user(BUYER, "Ann")
    await _owners(shop, OWNER_EN)
    pid = await shop.product(keys=3, name="Tom & Jerry <3>", low_stock_threshold=2)
    ctx = JobContext(shop.services)
    assert await stock_alerts(ctx) == 0
    await _sell(shop, pid)
    assert [await stock_alerts(ctx) for _ in range(4)] == [1, 0, 0, 0]
    alert = await shop.emu.wait_for(OWNER_EN, lambda m: "Low stock" in m.text)
    assert f"#{pid} Tom & Jerry <3> has 2 keys left (low-stock threshold 2)" in alert.text
    await _drained(shop)
    assert len(shop.emu.messages(OWNER_EN)) == 1
    screen = await shop.tap(OWNER_EN, alert, "Stock")
    assert "LOW" in screen.text and "Tom & Jerry <3>" in screen.text
