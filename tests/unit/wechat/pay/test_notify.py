"""Notifications: a genuine one is verified, decrypted and parsed; anything not provably WeChat Pay's,
fresh and ours is refused with a reason, before anything in it is believed."""

from __future__ import annotations

import json

import pytest

from handlers.wechat.pay import NotifyRejected
from tests.wechatpay_rig import APP_ID, BUYER, MCH_ID, Rig

NO = "K20250101000001"


async def paid(rig: Rig, total: int = 990) -> str:
    await rig.jsapi_order(NO, total)
    return await rig.platform.pay(NO, openid=BUYER)


async def test_a_payment_notification_carries_the_transaction(rig: Rig) -> None:
    transaction_id = await paid(rig)
    [notification] = rig.shop.received
    assert notification.event_type == "TRANSACTION.SUCCESS" and notification.refund is None
    t = notification.transaction
    assert t is not None
    assert (t.out_trade_no, t.transaction_id, t.trade_state) == (NO, transaction_id, "SUCCESS")
    assert (t.total, t.payer_total, t.currency, t.openid) == (990, 990, "CNY", BUYER)
    assert (t.appid, t.mchid) == (APP_ID, MCH_ID) and t.success_time is not None
    assert notification.id == rig.platform.notifies[0].id


@pytest.mark.parametrize("outcome", ["SUCCESS", "ABNORMAL", "CLOSED"])
async def test_a_refund_notification_carries_the_refund(rig: Rig, outcome: str) -> None:
    await paid(rig)
    await rig.pay.refund(out_trade_no=NO, out_refund_no="R1", refund=300, total=990)
    await rig.platform.settle_refund("R1", outcome)
    notification = rig.shop.received[-1]
    assert notification.event_type == f"REFUND.{outcome}" and notification.transaction is None
    assert notification.refund is not None
    assert (notification.refund.status, notification.refund.refund, notification.refund.total) == (
        outcome,
        300,
        990,
    )


async def test_a_notification_with_another_amount_is_passed_on_for_the_caller_to_compare(rig: Rig) -> None:
    # Genuinely signed: only the order's own amount can tell it is wrong, which the shop's service checks
    rig.platform.change_next_notify_amount(1)
    await paid(rig, 990)
    [notification] = rig.shop.received
    assert notification.transaction is not None and notification.transaction.total == 1


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda p: p.tamper_next_notify("signature"), "bad signature"),
        (lambda p: p.tamper_next_notify("signtest"), "bad signature"),
        (lambda p: p.tamper_next_notify("ciphertext"), "does not decrypt"),
        (lambda p: p.backdate_next_notify(301), "stale timestamp"),
        (lambda p: p.sign_next_notify_badly("wrong_key"), "bad signature"),
        (lambda p: p.sign_next_notify_badly("unknown_serial"), "unknown Wechatpay-Serial"),
        (lambda p: p.next_notify_for_another_merchant(), "not for our mchid/appid"),
    ],
    ids=["signature", "signtest", "ciphertext", "backdated", "wrong-key", "unknown-serial", "foreign"],
)
async def test_a_spoiled_notification_is_refused(rig: Rig, spoil: object, reason: str) -> None:
    spoil(rig.platform)  # type: ignore[operator]
    await paid(rig)
    assert rig.shop.received == []
    assert len(rig.shop.refused) == 1 and reason in rig.shop.refused[0]
    assert rig.platform.notifies[0].attempts[0].status == 400


async def test_an_old_notification_replayed_is_refused_as_stale(rig: Rig) -> None:
    await paid(rig)
    rig.advance(301)
    assert await rig.platform.replay(rig.platform.notifies[0]) == 400
    assert "stale" in rig.shop.refused[0] and len(rig.shop.received) == 1


async def test_a_replay_within_five_minutes_passes_so_handling_must_be_idempotent(rig: Rig) -> None:
    await paid(rig)
    rig.advance(60)
    assert await rig.platform.replay(rig.platform.notifies[0]) == 204
    first, again = rig.shop.received
    assert first == again


def sign(rig: Rig, body: bytes) -> dict[str, str]:
    return rig.platform.sign_notify(body)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "body is not JSON"),
        (b"[1, 2]", "body is not a JSON object"),
        (b'{"id": "EV-1", "event_type": "TRANSACTION.SUCCESS"}', "not a notification"),
        (
            json.dumps(
                {"id": "EV-1", "event_type": "TRANSACTION.SUCCESS", "resource": {"algorithm": "AES-CBC"}}
            ),
            "algorithm",
        ),
        (
            json.dumps({"id": "EV-1", "event_type": "X", "resource_type": "plain", "resource": {}}),
            "resource_type",
        ),
    ],
)
def test_a_signed_body_that_is_not_a_notification_is_refused(
    rig: Rig, body: bytes | str, reason: str
) -> None:
    raw = body.encode() if isinstance(body, str) else body
    with pytest.raises(NotifyRejected, match=reason):
        rig.pay.parse_notify(sign(rig, raw), raw)


def test_an_unsigned_notification_is_refused(rig: Rig) -> None:
    with pytest.raises(NotifyRejected, match="unsigned"):
        rig.pay.parse_notify({"Content-Type": "application/json"}, b"{}")


def test_an_oversized_body_is_refused_before_anything_else(rig: Rig) -> None:
    body = b" " * (64 * 1024 + 1)
    with pytest.raises(NotifyRejected, match="too large"):
        rig.pay.parse_notify(sign(rig, body), body)


def test_another_signature_type_is_refused(rig: Rig) -> None:
    headers = sign(rig, b"{}") | {"Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"}
    with pytest.raises(NotifyRejected, match="signature type"):
        rig.pay.parse_notify(headers, b"{}")


async def test_header_names_are_read_whatever_their_case(rig: Rig) -> None:
    await paid(rig)
    notice = rig.platform.notifies[0]
    headers, body = notice.first or ({}, b"")
    lowered = {k.lower(): v for k, v in headers.items()}
    upper = {k.upper(): v for k, v in headers.items()}
    assert rig.pay.parse_notify(lowered, body) == rig.pay.parse_notify(upper, body)


async def test_an_event_the_shop_does_not_know_is_verified_and_returned_without_content(rig: Rig) -> None:
    await paid(rig)
    envelope = json.loads(rig.platform.notifies[0].body)
    envelope["event_type"] = "MARKETING.COUPON.USED"
    body = json.dumps(envelope).encode()
    notification = rig.pay.parse_notify(sign(rig, body), body)
    assert (notification.event_type, notification.transaction, notification.refund) == (
        "MARKETING.COUPON.USED",
        None,
        None,
    )
