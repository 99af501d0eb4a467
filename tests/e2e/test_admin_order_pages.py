"""The back office's order lists page with ◀️ N/M ▶️, end to end in English and Simplified Chinese: more
than one page of pending orders and of one buyer's orders, each order once, its button on every page.

A staff admin (STAFF) pages: each paid manual order alerts the owners (OWNER), whose chat they would crowd."""

from __future__ import annotations

import pytest

from core.models import STARS, DeliveryKind
from core.services.order_desk import PAGE_SIZE
from tests.conftest import pay
from tests.e2e.conftest import Shop
from tests.e2e.test_admin_orders import BUYER, OWNER, T, _setup

STAFF = 900_020


async def _paid_manual_orders(shop: Shop, n: int) -> list[str]:
    """``n`` paid manual orders of BUYER (placed through the services: the paging is what is tested)."""
    product = await shop.product(name="Gift card", delivery_kind=DeliveryKind.MANUAL)
    user = await shop.services.users.ensure("telegram", str(BUYER), language="en")
    refs = []
    for i in range(n):
        order = await shop.services.checkout.checkout(user.id, product, 1, STARS)
        await pay(shop.services, order, charge=f"pg-{i}")
        refs.append(order.ref)
    return refs[::-1]  # newest first


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_pending_and_a_buyers_orders_page_forward_and_back(shop: Shop, lang: str) -> None:
    await _setup(shop, lang)
    shop.emu.user(STAFF, "Sam", T[lang]["lang"])
    await shop.say(OWNER, f"/staff admin {STAFF}")
    refs = await _paid_manual_orders(shop, PAGE_SIZE + 3)
    first_page, rest = refs[:PAGE_SIZE], refs[PAGE_SIZE:]
    for command in ("/orders_pending", f"/order {BUYER}"):
        first = await shop.say(STAFF, command)
        if command == "/orders_pending":
            assert T[lang]["pending_title"] in first.text
        assert all(r in first.text for r in first_page), (command, first.text)
        assert not any(r in first.text for r in rest), command
        labels = [b["text"] for b in first.buttons]
        assert "1/2" in labels and "▶️" in labels and "◀️" not in labels
        second = await shop.tap(STAFF, first, "▶️")
        assert all(r in second.text for r in rest) and not any(r in second.text for r in first_page)
        labels = [b["text"] for b in second.buttons]
        assert "2/2" in labels and "◀️" in labels and "▶️" not in labels
        back = await shop.tap(STAFF, second, "◀️")
        assert all(r in back.text for r in first_page) and "1/2" in [b["text"] for b in back.buttons]
        again = await shop.tap(STAFF, await shop.tap(STAFF, back, "▶️"), rest[-1])  # per-order buttons stay
        assert rest[-1] in again.text and T[lang]["order"] in again.text
