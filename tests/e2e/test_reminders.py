"""Membership reminders through the real bot, in English and Chinese, on a shifted clock: two buyers of a
30-day membership code are reminded 3 days and 1 day before it ends, once each however often the job runs
(the scheduler runs it too), with the end in SHOP_TIMEZONE. The Chinese buyer renews from the 1-day
reminder and hears no more about the old code; the English one gets the expired notice and renews from
it. Renew is one tap to the invoice of the same product."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from core import tables as t
from sandbox.telegram import Sent
from tests.conftest import query
from tests.e2e.conftest import Shop

EN, ZH = 811, 812
WORDS = {
    EN: {"d3": "ends in 3 days", "d1": "ends within a day", "expired": "ended on", "renew": "Renew"},
    ZH: {"d3": "还剩 3 天", "d1": "剩余不足 1 天", "expired": "已于", "renew": "续费"},
}
ZONE = "Asia/Shanghai"


async def _buy(shop: Shop, user: int, sent: Sent, label: str) -> str:
    """Tap ``label`` on ``sent`` (a Buy or Renew button), pay the invoice it brings, wait for the keys;
    the order's reference."""
    before = len(shop.emu.messages(user))
    await shop.emu.tap(user, sent, sent.button(label)["callback_data"])
    invoice = await shop.emu.wait_for(user, lambda s: s.method == "sendInvoice", after=before)
    assert (await shop.emu.pay(user, invoice))["paid"]
    ref = str(invoice.message["_payload"])
    await shop.emu.wait_for(user, lambda s: "KEY-" in s.text and ref in s.text, after=before)
    return ref


async def _remind(shop: Shop, at: datetime) -> None:
    """The clock moved to ``at``; the reminder job run three times (as two schedulers and a retry would);
    everything it wrote sent."""
    shop.clock.advance(seconds=(at - shop.clock.now()).total_seconds())
    job = shop.front.scheduler.get_job("remind_memberships")
    for _ in range(3):
        await job.func(*job.args)
    shop.front.outbox.wake()
    pending = select(func.count()).select_from(t.outbox).where(t.outbox.c.status == "pending")
    deadline = time.monotonic() + 10
    while (await query(shop.services, pending))[0][0]:
        assert time.monotonic() < deadline, "the outbox never drained"
        await asyncio.sleep(0.02)


def _reminders(shop: Shop, user: int, ref: str) -> list[Sent]:
    words = WORDS[user].values()
    return [s for s in shop.emu.messages(user) if ref in s.text and any(w in s.text for w in words)]


async def test_membership_buyers_are_reminded_once_per_stage_and_renew_with_one_tap(shop: Shop) -> None:
    shop.services.ctx.config = dataclasses.replace(shop.services.ctx.config, timezone=ZoneInfo(ZONE))
    # Not a test of Telegram's per-chat pace (a reminder, a tap, an invoice and the keys in a few seconds)
    shop.emu.per_chat_rate = shop.emu.per_chat_burst = 100.0
    shop.emu.user(EN, "Emma", "en")
    shop.emu.user(ZH, "李雷", "zh-hans")
    await shop.product(keys=4, name="VIP Month", price_stars=30, validity_days=30)
    old: dict[int, str] = {}
    for user in (EN, ZH):
        listing = await shop.say(user, "/catalog")
        card = await shop.tap(user, listing, "VIP Month")
        old[user] = await _buy(shop, user, card, "⭐")
    order = await shop.services.orders.get(old[EN])
    assert order.membership_expires_at is not None
    ends = order.membership_expires_at
    shown = f"{ends.astimezone(ZoneInfo(ZONE)):%Y-%m-%d %H:%M} ({ZONE})"

    await _remind(shop, ends - timedelta(days=3, minutes=-1))
    await _remind(shop, ends - timedelta(days=1, minutes=-1))
    for user in (EN, ZH):
        d3, d1 = _reminders(shop, user, old[user])
        assert WORDS[user]["d3"] in d3.text and WORDS[user]["d1"] in d1.text and shown in d1.text
    # Renewing a day early: the old code is not mentioned again, not even when it has ended.
    renewed = await _buy(shop, ZH, _reminders(shop, ZH, old[ZH])[-1], WORDS[ZH]["renew"])

    await _remind(shop, ends + timedelta(minutes=1))
    expired = _reminders(shop, EN, old[EN])[-1]
    assert WORDS[EN]["expired"] in expired.text and shown in expired.text
    again = await _buy(shop, EN, expired, WORDS[EN]["renew"])
    await _remind(shop, ends + timedelta(days=2))

    for user, stages in ((EN, ["d3", "d1", "expired"]), (ZH, ["d3", "d1"])):
        told = _reminders(shop, user, old[user])
        assert len(told) == len(stages)
        assert all(WORDS[user][s] in m.text for s, m in zip(stages, told, strict=True))
    for ref in (renewed, again):  # the same product, a new 30 days
        new = await shop.services.orders.get(ref)
        assert new.product_id == order.product_id and new.membership_expires_at is not None
        assert new.membership_expires_at > ends + timedelta(days=27)
