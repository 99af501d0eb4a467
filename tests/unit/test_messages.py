"""Typed outbox messages: stored as a type and its fields, read back as the same object."""

from __future__ import annotations

import logging

import pytest

from core.clock import FrozenClock
from core.messages import (
    CHAT_REPLY_MAX,
    MESSAGE_TYPES,
    AwaitingManual,
    BalanceReturned,
    Broadcast,
    ChatReply,
    DailySummary,
    InvoiceReminder,
    KeysDelivered,
    MembershipReminder,
    PayoutPaid,
    PayoutQueueDue,
    PayoutReady,
    PayoutRejected,
    RefundDue,
    RefundMade,
    StockAlert,
    UnknownMessage,
    decode,
)
from core.services import Services
from core.uow import UnitOfWork
from tests.conftest import buyer, in_write

SAMPLES = [
    KeysDelivered("REF1"),
    AwaitingManual("REF2"),
    RefundDue(provider="telegram", charge_id="ch", order_ref="REF3", reason=None, amount=50, currency="XTR"),
    RefundMade(order_ref="REF4", reason="already_paid", amount=990, currency="USD"),
    Broadcast(7),
    BalanceReturned(order_ref="REF5", reason="admin", amount=50, currency="XTR"),
    PayoutPaid(
        payout_id=3, amount=1250, currency="USD", payout_amount=1250, payout_currency="USD", reference="TX-1"
    ),
    PayoutRejected(payout_id=4, amount=40, currency="XTR", reason="wrong account"),
    PayoutReady(currency="XTR", amount=500, payout_amount=1000, payout_currency="USD"),
    PayoutQueueDue(slot="2026-01-05T10:00Z"),
    StockAlert(product_id=3, level="low", available=2, threshold=5),
    DailySummary(day="2026-01-04"),
    MembershipReminder(order_ref="REF6", stage="d3"),
    InvoiceReminder(order_ref="REF7"),
    ChatReply(text="订单 REF8：1 × 腾讯视频 VIP 月卡"),
]


def test_every_message_type_has_a_sample_here() -> None:
    assert {type(m) for m in SAMPLES} == set(MESSAGE_TYPES.values())


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: m.KIND)
def test_a_message_read_back_from_its_stored_fields_is_the_same_message(message: object) -> None:
    assert decode(message.KIND, message.fields()) == message  # type: ignore[attr-defined]


def test_message_kinds_are_the_names_stored_in_existing_outbox_rows() -> None:
    # Renaming a kind would make rows already in the outbox unreadable.
    assert set(MESSAGE_TYPES) == {
        "order_delivered",
        "order_awaiting_manual",
        "payment_refund",
        "payment_refunded_by_hand",
        "broadcast",
        "payment_returned_to_balance",
        "payout_paid",
        "payout_rejected",
        "payout_ready",
        "payout_queue",
        "stock_alert",
        "daily_summary",
        "membership_reminder",
        "invoice_reminder",
        "chat_reply",
    }


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("mystery", {}),
        ("order_delivered", {}),
        ("order_delivered", ["x"]),
        ("payment_refund", {"amount": 1}),
        ("stock_alert", {"product_id": 1, "level": "empty", "available": 0, "threshold": 0}),
        ("daily_summary", {"day": "yesterday"}),
    ],
)
def test_a_message_no_code_can_read_is_refused(kind: str, fields: object) -> None:
    with pytest.raises(UnknownMessage):
        decode(kind, fields)  # type: ignore[arg-type]


def test_refunds_and_late_answers_keep_what_the_outbox_stores_bounded() -> None:
    m = RefundDue(
        provider="p", charge_id="c", order_ref="R" * 500, reason="x", amount=1, currency="LONGCURRENCY"
    )
    assert len(m.order_ref) == 128 and m.currency == "LONGCURR"
    assert len(ChatReply("卡" * 10_000).text) == CHAT_REPLY_MAX


async def test_a_damaged_outbox_row_is_set_aside_and_logged_and_the_rest_still_claimed(
    shop: Services, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    uid = await buyer(shop, "77")

    def add_both(uow: UnitOfWork) -> None:
        uow.repo.outbox.add(uid, RefundDue.KIND, {"amount": "not a refund"}, clock.now())
        uow.repo.outbox.add(uid, KeysDelivered.KIND, {"order_ref": "R1"}, clock.now())

    await in_write(shop, add_both)
    with caplog.at_level(logging.ERROR, logger="core.services.outbox"):
        claimed = await shop.outbox.claim("telegram")
    assert [m.message for m in claimed] == [KeysDelivered("R1")]
    assert "payment_refund" in caplog.text and "set aside" in caplog.text


def test_two_message_types_cannot_share_a_kind() -> None:
    from core.messages import _registry

    with pytest.raises(TypeError):
        _registry(KeysDelivered, AwaitingManual, KeysDelivered)


@pytest.mark.parametrize("order_ref", [None, ["R"], {"R": 1}, 7])
def test_decode_refuses_a_field_of_the_wrong_type(order_ref: object) -> None:
    # a damaged row must be set aside at claim time, not handed to a deliverer to fail and be retried
    with pytest.raises(UnknownMessage):
        decode(KeysDelivered.KIND, {"order_ref": order_ref})
