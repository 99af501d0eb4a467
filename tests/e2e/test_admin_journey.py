"""Issue 9's "done when": an owner goes from an empty shop to selling without leaving Telegram (a category
and a product made in the editor, keys uploaded as a document, the first sale in /stats with its chart, a
refund from /order) while an operator scoped to another product cannot see or touch any of it."""

from __future__ import annotations

import asyncio
import struct

from core.models import STARS, DeliveryKind, OrderStatus
from handlers.telegram.ui.callbacks import OrderActCb, OrderViewCb, StockVoidBatchCb
from sandbox.telegram import Sent
from tests.e2e.conftest import ADMIN, Shop

OWNER, OPERATOR, BUYER = 900_002, 900_010, 601  # OWNER: a second owner (messages to ADMIN count as alerts)


async def _tap(shop: Shop, user: int, sent: Sent, label: str) -> Sent:
    await asyncio.sleep(0.5)  # a person's pace: the bot drops taps faster than two a second
    return await shop.tap(user, sent, label)


async def _answer(shop: Shop, user: int, sent: Sent, data: str) -> str:
    await asyncio.sleep(0.5)
    return str((await shop.answer_to(await shop.tap_data(user, sent, data)))["text"])


async def _until(shop: Shop, ref: str, status: OrderStatus) -> None:
    for _ in range(200):
        if (await shop.services.orders.get(ref)).status is status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"order {ref} never became {status}")


async def test_an_owner_goes_from_an_empty_shop_to_a_sale_and_a_refund_while_another_operator_sees_none_of_it(
    shop: Shop,
) -> None:
    shop.emu.user(OWNER, "Owen")
    shop.emu.user(OPERATOR, "Olga")
    shop.emu.user(BUYER, "Ann")
    await shop.rebuild(admin_ids=[ADMIN, OWNER], brisk=True)  # a long walk, not a test of the pace
    assert await shop.services.catalog.products() == []

    # the operator's product, and their role (scoped to it)
    step = await shop.say(OWNER, "/newproduct")
    for text in ("Steam 10", "-"):
        step = await shop.say(OWNER, text)
    # (a description of "-" is a description; the category step follows)
    step = await _tap(shop, OWNER, step, "None")  # no category
    step = await shop.say(OWNER, "9.90")
    step = await shop.say(OWNER, "50")
    step = await _tap(shop, OWNER, step, "Unique keys")
    step = await _tap(shop, OWNER, step, "None")  # validity
    for text in ("1", "5"):
        step = await shop.say(OWNER, text)
    step = await _tap(shop, OWNER, step, "None")  # per-buyer limit
    step = await _tap(shop, OWNER, step, "None")  # daily limit
    step = await _tap(shop, OWNER, step, "No")  # phone
    step = await shop.say(OWNER, "2")  # low stock
    step = await _tap(shop, OWNER, step, "Keep")  # commission: the shop's rates
    preview = await _tap(shop, OWNER, step, "Yes")  # on sale
    assert "Preview" in preview.text
    assert "Saved: product" in (await _tap(shop, OWNER, preview, "Save")).text
    (other,) = await shop.services.catalog.products()
    assert "Saved" in (await shop.say(OWNER, f"/staff operator {OPERATOR} p:{other.id}")).text

    # 1. a category, then a product in it
    step = await shop.say(OWNER, "/newcategory")
    step = await shop.say(OWNER, "Streaming")
    step = await _tap(shop, OWNER, step, "None")
    preview = await shop.say(OWNER, "1")
    assert "Saved: category" in (await _tap(shop, OWNER, preview, "Save")).text
    (category,) = await shop.services.catalog.categories()

    step = await shop.say(OWNER, "/newproduct")
    step = await shop.say(OWNER, "Netflix 1 month")
    step = await shop.say(OWNER, "Premium, 4K")
    step = await _tap(shop, OWNER, step, "Streaming")
    step = await shop.say(OWNER, "12.50")
    step = await shop.say(OWNER, "50")
    step = await _tap(shop, OWNER, step, "Unique keys")
    step = await shop.say(OWNER, "30")  # a membership code valid 30 days
    for text in ("1", "3"):
        step = await shop.say(OWNER, text)
    step = await _tap(shop, OWNER, step, "None")
    step = await _tap(shop, OWNER, step, "None")
    step = await _tap(shop, OWNER, step, "No")
    step = await shop.say(OWNER, "1")
    step = await _tap(shop, OWNER, step, "None")  # commission: the shop's rates
    preview = await _tap(shop, OWNER, step, "Yes")
    assert "Netflix 1 month" in preview.text and "Premium, 4K" in preview.text and "50 ⭐" in preview.text
    assert "Saved: product" in (await _tap(shop, OWNER, preview, "Save")).text
    mine = next(p for p in await shop.services.catalog.products() if p.name == "Netflix 1 month")
    assert (mine.category_id, mine.price, mine.price_stars, mine.validity_days) == (category.id, 1250, 50, 30)
    assert mine.delivery_kind is DeliveryKind.UNIQUE

    # 2. keys uploaded as a document; the report names the import
    before = len(shop.emu.messages(OWNER))
    keys = b"NFX-AAAA-0001\nNFX-AAAA-0002\nNFX-AAAA-0002\nNFX-AAAA-0003\n"
    await shop.emu.upload(OWNER, "netflix.txt", keys, caption=f"/import {mine.id}")
    report = await shop.emu.wait_for(OWNER, lambda s: "Added: 3" in s.text, after=before, within=15)
    assert "Duplicates (skipped): 1" in report.text
    stock = await shop.say(OWNER, "/stock")
    assert f"#{mine.id} Netflix 1 month: 3 / 0 / 0" in stock.text

    # the operator of the other product sees and touches none of it
    assert "Netflix" not in (await shop.say(OPERATOR, "/stock")).text
    before = len(shop.emu.messages(OPERATOR))
    await shop.emu.upload(OPERATOR, "mine.txt", b"OP-1\n", caption=f"/import {mine.id}")
    assert "not part of your role" in (await shop.emu.wait_for(OPERATOR, after=before)).text
    assert "not part of your role" in (await shop.say(OPERATOR, f"/void {mine.id} NFX-AAAA-0001")).text

    # 3. a buyer buys it in Stars and gets a key
    before = len(shop.emu.messages(BUYER))
    card = await shop.tap(BUYER, await shop.say(BUYER, "/catalog"), "Streaming")
    card = await shop.tap(BUYER, card, "Netflix")
    invoice = await shop.tap(BUYER, card, "Buy")
    ref = str(invoice.message["_payload"])
    charge = str((await shop.emu.pay(BUYER, invoice))["charge_id"])
    await shop.emu.wait_for(BUYER, lambda s: "NFX-AAAA-000" in s.text, after=before)
    await _until(shop, ref, OrderStatus.DELIVERED)

    # 4. the first sale in /stats, with its chart
    today = await shop.say(OWNER, "/stats")
    assert "Revenue: 50 ⭐" in today.text and "Orders: 1 · Units: 1 · New buyers: 1" in today.text
    assert "1. Netflix 1 month: 1 sold, 50 ⭐" in today.text
    before = len(shop.emu.messages(OWNER))
    await asyncio.sleep(0.5)
    await shop.emu.tap(OWNER, today, today.button("Chart")["callback_data"])
    photo = await shop.emu.wait_for(OWNER, lambda s: s.method == "sendPhoto", after=before, within=30)
    png = shop.emu.files[photo.message["photo"][-1]["file_id"]][1]
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (1080, 1500)

    # the operator can neither find the order nor act on it, even with forged buttons
    assert "Order not found" in (await shop.say(OPERATOR, f"/order {ref}")).text
    op_menu = await shop.say(OPERATOR, "/admin")
    for data in (
        OrderViewCb(ref=ref).pack(),
        OrderActCb(ref=ref, act="refund", sure=True).pack(),
        OrderActCb(ref=ref, act="resend").pack(),
    ):
        assert "Order not found" in await _answer(shop, OPERATOR, op_menu, data), data
    forged_void = StockVoidBatchCb(product_id=mine.id, import_id=1).pack()
    assert "not part of your role" in await _answer(shop, OPERATOR, op_menu, forged_void)
    for command in ("/stats", "/products", f"/edit {mine.id}", f"/hide {mine.id}", "/audit"):
        assert "not part of your role" in (await shop.say(OPERATOR, command)).text, command
    assert (await shop.services.orders.get(ref)).status is OrderStatus.DELIVERED

    # 5. the owner refunds it from /order: Stars back, the buyer told, the sale's refund in /stats
    screen = await shop.say(OWNER, f"/order {ref}")
    ask = await _tap(shop, OWNER, screen, "Refund")
    await _tap(shop, OWNER, ask, "Yes, refund")
    await _until(shop, ref, OrderStatus.REFUNDED)
    assert shop.emu.payments[charge].refunded
    await shop.emu.wait_for(BUYER, lambda s: "↩️" in s.text and ref in s.text)
    after = await shop.say(OWNER, "/stats")
    assert "Refunds: 1 (50 ⭐)" in after.text
    (level,) = await shop.services.stock.levels(mine.id)
    # the buyer saw the key (it was delivered in the chat): it is voided, the other two stay on sale
    assert (level.available, level.sold, level.void) == (2, 0, 1)
    assert (await shop.services.orders.get(ref)).currency == STARS
