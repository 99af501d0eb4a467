"""How reminders read in Telegram: the buyer's language, the product's name escaped, the end in
SHOP_TIMEZONE, days left, and Renew buying the same product through the storefront's Buy; nothing about
an order that no longer needs it. Keys show their validity in SHOP_TIMEZONE too."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiogram.types import InlineKeyboardMarkup

from bot.i18n import build_i18n
from core.clock import FrozenClock
from core.messages import InvoiceReminder, MembershipReminder, Message
from core.models import STARS, Order
from core.services import Services
from core.services.outbox import OutboxMessage
from handlers.telegram.alerts import AdminAlerts
from handlers.telegram.ui.callbacks import MenuCb, RenewCb
from handlers.telegram.ui.delivery import send_keys
from handlers.telegram.workers.messages import Outgoing, deliver
from tests.conftest import buyer, pay, stocked

SHANGHAI = ZoneInfo("Asia/Shanghai")


class _Bot:
    """What the deliverers asked Telegram to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, InlineKeyboardMarkup | None]] = []

    async def send_message(self, chat_id: int, text: str, reply_markup: Any = None, **_: Any) -> None:
        self.sent.append((text, reply_markup))


async def _send(shop: Services, order: Order, message: Message, language: str) -> _Bot:
    bot = _Bot()
    item = OutboxMessage(1, order.user_id, "telegram", "501", language, message, 0)
    i18n = build_i18n()
    with i18n.context(), i18n.use_locale(language):
        await deliver(Outgoing(bot, shop, AdminAlerts(bot, []), item))  # type: ignore[arg-type]
    return bot


def _buttons(markup: InlineKeyboardMarkup | None) -> list[tuple[str, str | None]]:
    assert markup is not None
    return [(b.text, b.callback_data) for row in markup.inline_keyboard for b in row]


async def _membership(shop: Services) -> Order:
    shop.ctx.config = dataclasses.replace(shop.ctx.config, timezone=SHANGHAI)
    pid = await stocked(shop, 2, name="VIP <gold> & co", validity_days=30)
    order = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    await pay(shop, order)
    return await shop.orders.get(order.ref)


async def test_a_membership_reminder_reads_in_the_buyers_language_with_the_end_in_shop_time(
    shop: Services, clock: FrozenClock
) -> None:
    order = await _membership(shop)  # ends 2026-01-31 12:00 UTC: 20:00 in Shanghai
    clock.advance(days=27)
    bot = await _send(shop, order, MembershipReminder(order.ref, "d3"), "zh_CN")
    [(text, markup)] = bot.sent
    assert "VIP &lt;gold&gt; &amp; co" in text and order.ref in text
    assert "2026-01-31 20:00 (Asia/Shanghai)" in text and "还剩 3 天" in text
    renew = RenewCb(product_id=order.product_id, qty=1, fiat=False).pack()
    assert _buttons(markup) == [("🔄 续费", renew)]

    clock.advance(days=2, hours=12)  # half a day left
    [(text, _)] = (await _send(shop, order, MembershipReminder(order.ref, "d1"), "en")).sent
    assert "ends within a day, on 2026-01-31 20:00 (Asia/Shanghai)" in text
    clock.advance(days=1)
    [(text, markup)] = (await _send(shop, order, MembershipReminder(order.ref, "expired"), "en")).sent
    assert "ended on 2026-01-31 20:00 (Asia/Shanghai)" in text and _buttons(markup) == [("🔄 Renew", renew)]


async def test_a_days_left_reminder_that_goes_out_after_the_end_leaves_the_end_to_the_expired_notice(
    shop: Services, clock: FrozenClock
) -> None:
    order = await _membership(shop)
    assert order.membership_expires_at is not None
    clock.advance(seconds=(order.membership_expires_at - clock.now()).total_seconds() - 120)
    assert await shop.reminders.remind_memberships() == 1  # d1, two minutes before the end
    clock.advance(minutes=3)  # a busy outbox sends it a minute after the end
    late = await _send(shop, order, MembershipReminder(order.ref, "d1"), "en")
    assert await shop.reminders.remind_memberships() == 1  # the expired stage, as always
    notice = await _send(shop, order, MembershipReminder(order.ref, "expired"), "en")
    ended = [text for text, _ in late.sent + notice.sent if "ended on" in text]
    assert len(ended) == 1  # told once that it ended


async def test_a_reminder_about_an_order_refunded_since_sends_nothing(shop: Services) -> None:
    order = await _membership(shop)
    await shop.refunds.request_refund(order.ref, actor="cli")
    assert (await _send(shop, order, MembershipReminder(order.ref, "d3"), "en")).sent == []


async def test_an_invoice_reminder_names_the_order_and_when_its_stock_is_released(
    shop: Services, clock: FrozenClock
) -> None:
    shop.ctx.config = dataclasses.replace(shop.ctx.config, timezone=SHANGHAI)
    pid = await stocked(shop, 2, name="Tom & Jerry")
    order = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    clock.advance(minutes=11)
    [(text, markup)] = (await _send(shop, order, InvoiceReminder(order.ref), "en")).sent
    assert order.ref in text and "Tom &amp; Jerry" in text and "2026-01-01 20:15 (Asia/Shanghai)" in text
    assert _buttons(markup) == [("📦 My orders", MenuCb(action="orders").pack())]
    await pay(shop, order)
    assert (await _send(shop, order, InvoiceReminder(order.ref), "en")).sent == []


async def test_keys_show_their_validity_in_shop_time(shop: Services) -> None:
    order = await _membership(shop)
    product = await shop.catalog.product(order.product_id)
    bot = _Bot()
    i18n = build_i18n()
    with i18n.context(), i18n.use_locale("en"):
        await send_keys(bot, 501, order, product, ["KEY-1"], SHANGHAI)  # type: ignore[arg-type]
    [(text, _)] = bot.sent
    assert "Valid until 2026-01-31 20:00 (Asia/Shanghai)." in text and "UTC" not in text
    assert order.membership_expires_at == order.delivered_at + timedelta(days=30)  # type: ignore[operator]
