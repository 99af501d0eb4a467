"""Hostile and unlucky taps on a membership reminder's Renew button: the product sold out, switched off,
the buyer banned, or the button forged for a product that does not exist. Each gets a clear answer in
the buyer's language and leaves the reminder as it was (its text, the end date and Renew, for later), and
nothing is reserved."""

from __future__ import annotations

import copy
from datetime import timedelta

from core import tables as t
from core.models import OrderStatus
from sandbox.telegram import Sent
from tests.conftest import query
from tests.e2e.conftest import ADMIN, Shop
from tests.e2e.test_reminders import _buy, _remind, _reminders

EN, ZH = 811, 812
SOLD_OUT = {EN: "not enough stock of VIP Month", ZH: "会员月卡 库存不足"}
RENEW = {EN: "Renew", ZH: "续费"}


async def _reminded(shop: Shop, user: int, name: str) -> tuple[int, Sent]:
    """A buyer of the shop's last code of a 30-day membership, reminded 3 days before it ends: the
    product, the reminder."""
    pid = await shop.product(keys=1, name=name, price_stars=30, validity_days=30)
    listing = await shop.say(user, "/catalog")
    ref = await _buy(shop, user, await shop.tap(user, listing, name), "⭐")
    ends = (await shop.services.orders.get(ref)).membership_expires_at
    assert ends is not None
    await _remind(shop, ends - timedelta(days=3, minutes=-1))
    [reminder] = _reminders(shop, user, ref)
    return pid, Sent(copy.deepcopy(reminder.message), reminder.method)  # as it was sent


async def _tap_renew(shop: Shop, user: int, reminder: Sent) -> Sent:
    """Renew tapped; the bot's answer (a message or an edit)."""
    before = len(shop.emu.messages(user))
    await shop.emu.tap(user, reminder, reminder.button(RENEW[user])["callback_data"])
    return await shop.emu.wait_for(user, after=before)


def _unchanged(shop: Shop, user: int, reminder: Sent) -> None:
    [now] = [m for m in shop.emu.history(user) if m["message_id"] == reminder.message["message_id"]]
    assert now["text"] == reminder.text and "edit_date" not in now
    assert [b["text"] for row in now["reply_markup"]["inline_keyboard"] for b in row] == [
        b["text"] for b in reminder.buttons
    ]


async def _pending(shop: Shop) -> int:
    o = t.orders
    rows = await query(shop.services, o.select().where(o.c.status == OrderStatus.PENDING.value))
    return len(rows)


async def test_a_refused_renewal_is_told_and_leaves_the_reminder_and_its_button(shop: Shop) -> None:
    await shop.rebuild(brisk=True)
    shop.emu.user(EN, "Emma", "en")
    shop.emu.user(ZH, "李雷", "zh-hans")
    pid, reminder = await _reminded(shop, EN, "VIP Month")

    told = await _tap_renew(shop, EN, reminder)  # the last code was theirs: none left
    assert SOLD_OUT[EN] in told.text
    _unchanged(shop, EN, reminder)

    await shop.services.catalog.update_product(pid, active=False)
    told = await _tap_renew(shop, EN, reminder)
    assert told.text == "VIP Month is not on sale at the moment."
    _unchanged(shop, EN, reminder)

    await shop.services.buyers.ban("telegram", str(EN), "chargebacks", actor="test", owners=[str(ADMIN)])
    await shop.services.catalog.update_product(pid, active=True)
    told = await _tap_renew(shop, EN, reminder)
    assert "cannot place orders in this shop" in told.text
    _unchanged(shop, EN, reminder)
    assert await _pending(shop) == 0

    # In Chinese, too.
    _, reminder_zh = await _reminded(shop, ZH, "会员月卡")
    told = await _tap_renew(shop, ZH, reminder_zh)
    assert SOLD_OUT[ZH] in told.text, told.text
    _unchanged(shop, ZH, reminder_zh)
    assert await _pending(shop) == 0
