"""Attacks on the payment rules at the service level that still get through (see the attack report)."""

from __future__ import annotations

import pytest

from core.errors import ShopError
from core.models import STARS, PaymentStatus
from core.services import Services
from tests.conftest import buyer, stocked


async def test_pre_checkout_refuses_a_buyer_blocklisted_after_checkout(shop: Services) -> None:
    """An admin blocklists a buyer (or takes the product off sale) while their invoice is open: the
    purchase rules that a late payment meets are skipped on time, so the buyer still gets the keys."""
    pid = await stocked(shop, 2)
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 1, STARS)
    await shop.users.set_blocklisted(uid, True)
    with pytest.raises(ShopError):
        await shop.payments.check_payable(o.ref, o.amount, STARS, payer=uid)


async def test_a_payment_from_a_buyer_blocklisted_after_checkout_is_refunded(shop: Services) -> None:
    pid = await stocked(shop, 2)
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 1, STARS)
    await shop.users.set_blocklisted(uid, True)
    res = await shop.payments.confirm_payment("telegram", "c", o.ref, o.amount, STARS, payer_id=uid)
    assert res.outcome is PaymentStatus.REFUND_DUE and res.reason == "blocklisted"
