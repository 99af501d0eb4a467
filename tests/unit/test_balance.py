"""The shop balance's rules: one charge per order for its whole amount, never a channel's or an admin's to
pay back, and buttons whose data is bounded like every other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiogram.filters.callback_data import CallbackData

from core.balance import BALANCE, balance_charge
from core.models import STARS, Order, OrderStatus, Payment, PaymentStatus
from core.services.refunds import owed_by_hand, paid_back_by_channel
from handlers.telegram.ui.callbacks import PayBalanceCb

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _order(ref: str = "ABCDEF0123456789", amount: int = 30, currency: str = STARS) -> Order:
    return Order(
        id=7,
        ref=ref,
        user_id=42,
        product_id=3,
        quantity=1,
        currency=currency,
        amount=amount,
        status=OrderStatus.PENDING,
        created_at=NOW,
        expires_at=NOW + timedelta(minutes=15),
        paid_at=None,
        delivered_at=None,
        revealed_at=None,
        membership_expires_at=None,
    )


def _payment(provider: str, currency: str, status: PaymentStatus = PaymentStatus.REFUND_DUE) -> Payment:
    return Payment(1, provider, "ch", 7, "REF", 42, 30, currency, status, "admin", NOW, None)


def test_a_balance_charge_is_one_per_order_for_its_whole_amount_paid_by_its_buyer() -> None:
    order = _order()
    charge = balance_charge(order)
    assert (charge.provider, charge.charge_id) == (BALANCE, "balance:ABCDEF0123456789")
    assert (charge.order_ref, charge.amount, charge.currency, charge.payer_id) == (order.ref, 30, STARS, 42)
    assert balance_charge(order) == charge  # a second tap makes the same charge: a replay


def test_a_balance_payment_is_neither_paid_back_by_a_channel_nor_by_hand() -> None:
    for currency in (STARS, "USD"):
        owed = _payment(BALANCE, currency)
        assert not paid_back_by_channel(owed)
        assert owed_by_hand([owed]) == []
    assert owed_by_hand([_payment("manual", "USD")]) != []  # what an admin still returns by hand


def test_a_wechat_pay_charge_is_paid_back_by_its_channel_never_by_hand() -> None:
    owed = _payment("wechatpay", "CNY")
    assert paid_back_by_channel(owed)
    assert owed_by_hand([owed]) == []


@pytest.mark.parametrize(
    "data",
    [
        "pb:ABC:pay",  # a step that is not one
        "pb:bad ref!:go",
        "pb:" + "A" * 33 + ":go",  # longer than any order reference
        "pb::go",
        "pb:ABC",
    ],
)
def test_forged_balance_button_data_is_refused(data: str) -> None:
    with pytest.raises((ValueError, TypeError)):
        PayBalanceCb.unpack(data)


def test_balance_button_data_round_trips_within_telegrams_64_bytes() -> None:
    cb = PayBalanceCb(ref="A" * 32, step="back")
    packed = cb.pack()
    assert len(packed.encode()) <= 64 and PayBalanceCb.unpack(packed) == cb
    assert isinstance(cb, CallbackData) and packed.startswith("pb:")
