"""Buy taps that arrive late, twice, too often, or whose invoice Telegram refuses: no stock is held for an
invoice the buyer never got, and one buyer cannot hold the shop's stock in unpaid reservations."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from core import tables as t
from tests.conftest import query
from tests.e2e.conftest import Shop

BUYER, OTHER = 701, 702


async def _count(shop: Shop, table: t.Table, *where: object) -> int:  # type: ignore[name-defined]
    q = select(func.count()).select_from(table)
    for w in where:
        q = q.where(w)  # type: ignore[arg-type]
    ((n,),) = await query(shop.services, q)
    return int(n)


async def _pending(shop: Shop) -> int:
    return await _count(shop, t.orders, t.orders.c.status == "pending")


# ---------------------------------------------------------------- a tap answered too late (> 15 s)


async def test_a_buy_tap_whose_query_expired_still_sends_the_invoice_or_holds_no_stock(shop: Shop) -> None:
    """After a backlog (restart, slow database) a Buy tap older than ~15 s: answering it fails with
    'query is too old' (treated as harmless), and the handler stops right there: the order is made and
    the keys reserved, but no invoice is ever sent and the buyer sees nothing."""
    pid = await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    listing = await shop.say(BUYER, "/catalog")
    card = await shop.tap(BUYER, listing, "Steam")
    shop.emu.callback_ttl = 0.0  # every answer from now on is "too old"
    before = len(shop.emu.messages(BUYER))
    await shop.tap_data(BUYER, card, card.button("Buy")["callback_data"])
    await asyncio.sleep(1.5)
    invoices = [s for s in shop.emu.messages(BUYER)[before:] if s.method == "sendInvoice"]
    assert invoices or (await _pending(shop) == 0 and await shop.services.stock.available(pid) == 1), (
        f"no invoice, {await _pending(shop)} pending order(s), "
        f"{await shop.services.stock.available(pid)} key(s) available"
    )


# ---------------------------------------------------------------- flood limits met by a quick buyer


async def test_sendinvoice_429_releases_the_reservation_and_alerts_nobody(shop: Shop) -> None:
    pid = await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    listing = await shop.say(BUYER, "/catalog")
    card = await shop.tap(BUYER, listing, "Steam")
    shop.emu.fail_next("sendInvoice", 429, retry_after=5)
    await shop.tap_data(BUYER, card, card.button("Buy")["callback_data"])
    await asyncio.sleep(1.5)
    assert await _pending(shop) == 0 and await shop.services.stock.available(pid) == 1, (
        "the reservation is left pending although no invoice was sent"
    )


# ---------------------------------------------------------------- double taps and hoarding


async def test_a_double_tap_on_buy_makes_one_order(shop: Shop) -> None:
    await shop.product(keys=5)
    shop.emu.user(BUYER, "Ann")
    listing = await shop.say(BUYER, "/catalog")
    card = await shop.tap(BUYER, listing, "Steam")
    data = card.button("Buy")["callback_data"]
    await shop.tap_data(BUYER, card, data)
    await shop.tap_data(BUYER, card, data)
    await asyncio.sleep(2)
    assert await _pending(shop) == 1


async def test_one_buyer_cannot_hold_all_the_stock_in_unpaid_reservations(shop: Shop) -> None:
    """Forged/replayed Buy taps, slow enough for the throttle: every tap reserves max_qty more keys for
    15 minutes; nothing caps a buyer's pending orders, so the whole stock is held and others sold out."""
    pid = await shop.product(keys=10, max_qty=2)
    shop.emu.user(BUYER, "Mallory")
    shop.emu.user(OTHER, "Bob")
    menu = await shop.say(BUYER, "/start")
    for _ in range(5):
        await shop.tap_data(BUYER, menu, f"b:{pid}:2:0")
        await asyncio.sleep(1.1)  # under the throttle and Telegram's per-chat limit
    await asyncio.sleep(1)
    assert await shop.services.stock.available(pid) > 0, "one unpaying buyer holds every key"
