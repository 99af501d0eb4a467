"""Notifications from the emulated platform: what they are made of, WeChat Pay's retry schedule, and the
hostile controls seen from the platform's side."""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sandbox.wechatpay import RETRY_SCHEDULE, crypto
from tests.wechatpay_rig import API_V3_KEY, APP_ID, BUYER, MCH_ID, Rig, platform_key

NO = "K20250101000001"


async def paid(rig: Rig) -> None:
    await rig.jsapi_order(NO, 990)
    await rig.platform.pay(NO, openid=BUYER)


def opened(body: bytes) -> tuple[dict[str, object], dict[str, object]]:
    envelope = json.loads(body)
    r = envelope["resource"]
    plain = AESGCM(API_V3_KEY).decrypt(
        r["nonce"].encode(), base64.b64decode(r["ciphertext"]), r["associated_data"].encode()
    )
    return envelope, json.loads(plain)


async def test_a_payment_notification_is_signed_and_encrypted_as_wechat_pay_sends_it(rig: Rig) -> None:
    await paid(rig)
    [notice] = rig.platform.notifies
    assert notice.first is not None
    headers, body = notice.first
    signed = f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n".encode() + body + b"\n"
    assert crypto.verify(platform_key().public_key(), signed, headers["Wechatpay-Signature"])
    assert headers["Wechatpay-Serial"] == rig.platform.public_key_id
    envelope, resource = opened(body)
    assert set(envelope) == {"id", "create_time", "resource_type", "event_type", "summary", "resource"}
    assert (envelope["resource_type"], envelope["event_type"]) == ("encrypt-resource", "TRANSACTION.SUCCESS")
    assert envelope["resource"]["algorithm"] == "AEAD_AES_256_GCM"  # type: ignore[index]
    assert envelope["resource"]["original_type"] == "transaction"  # type: ignore[index]
    assert str(envelope["create_time"]).endswith("+08:00")
    assert (resource["appid"], resource["mchid"], resource["out_trade_no"]) == (APP_ID, MCH_ID, NO)
    assert resource["trade_state"] == "SUCCESS" and resource["payer"] == {"openid": BUYER}
    assert resource["amount"] == {
        "total": 990,
        "payer_total": 990,
        "currency": "CNY",
        "payer_currency": "CNY",
    }
    assert [a.status for a in notice.attempts] == [204] and notice.delivered


async def test_a_failing_shop_is_retried_on_wechat_pays_schedule_then_given_up(rig: Rig) -> None:
    rig.shop.answer = 500
    await paid(rig)
    [notice] = rig.platform.notifies
    while notice.due is not None:
        rig.clock.t = notice.due
        assert await rig.platform.deliver_due() == 1
    assert notice.delays() == list(RETRY_SCHEDULE)
    assert len(notice.attempts) == 16 and {a.status for a in notice.attempts} == {500}
    assert notice.given_up and not notice.delivered
    assert sum(RETRY_SCHEDULE) == 86_640  # about 24 hours


async def test_after_a_long_silence_every_retry_due_is_made_in_order(rig: Rig) -> None:
    rig.shop.answer = 500
    await paid(rig)
    rig.advance(3600)
    assert await rig.platform.deliver_due() == 6  # at 15, 30, 60, 240, 840, 2040 s
    [notice] = rig.platform.notifies
    assert [a.at - notice.attempts[0].at for a in notice.attempts] == [0, 15, 30, 60, 240, 840, 2040]
    assert notice.due == notice.attempts[0].at + 3840


async def test_retries_stop_once_the_shop_answers_200_or_204(rig: Rig) -> None:
    rig.shop.answer = 503
    await paid(rig)
    rig.shop.answer = 200
    rig.advance(15)
    await rig.platform.deliver_due()
    [notice] = rig.platform.notifies
    assert [a.status for a in notice.attempts] == [503, 200] and notice.delivered and notice.due is None
    rig.advance(86_400)
    assert await rig.platform.deliver_due() == 0


async def test_any_other_answer_is_a_failure(rig: Rig) -> None:
    rig.shop.answer = 202
    await paid(rig)
    [notice] = rig.platform.notifies
    assert not notice.delivered and notice.due == notice.attempts[0].at + 15


async def test_a_shop_slower_than_the_timeout_fails_the_attempt(rig: Rig) -> None:
    rig.platform.notify_timeout, rig.shop.delay = 0.05, 0.3
    await paid(rig)
    [attempt] = rig.platform.notifies[0].attempts
    assert attempt.status is None and attempt.error is not None


async def test_flush_makes_the_next_retry_now_without_moving_the_clock(rig: Rig) -> None:
    rig.shop.answer = 500
    await paid(rig)
    rig.shop.answer = None
    assert await rig.platform.flush() == 1
    [notice] = rig.platform.notifies
    assert notice.delivered and [a.at for a in notice.attempts] == [rig.clock(), rig.clock()]


async def test_a_dropped_notification_is_never_sent_but_the_payment_shows_in_a_query(rig: Rig) -> None:
    rig.platform.drop_next_notify()
    await paid(rig)
    [notice] = rig.platform.notifies
    assert notice.dropped and notice.attempts == [] and rig.shop.received == []
    rig.advance(86_400)
    assert await rig.platform.deliver_due() == 0
    assert (await rig.pay.query(NO)).trade_state == "SUCCESS"


async def test_a_duplicated_notification_arrives_twice_with_one_id(rig: Rig) -> None:
    rig.platform.duplicate_next_notify()
    await paid(rig)
    first, second = rig.shop.received
    assert first.id == second.id and [a.kind for a in rig.platform.notifies[0].attempts] == [
        "first",
        "duplicate",
    ]


async def test_controls_spoil_only_the_next_notification(rig: Rig) -> None:
    rig.platform.tamper_next_notify("signature")
    await paid(rig)
    await rig.pay.refund(out_trade_no=NO, out_refund_no="R1", refund=990, total=990)
    await rig.platform.settle_refund("R1")
    assert len(rig.shop.refused) == 1 and [n.event_type for n in rig.shop.received] == ["REFUND.SUCCESS"]


async def test_a_tampered_ciphertext_is_still_signed_so_only_decryption_catches_it(rig: Rig) -> None:
    rig.platform.tamper_next_notify("ciphertext")
    await paid(rig)
    headers, body = rig.platform.notifies[0].first or ({}, b"")
    signed = f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n".encode() + body + b"\n"
    assert crypto.verify(platform_key().public_key(), signed, headers["Wechatpay-Signature"])
    assert "does not decrypt" in rig.shop.refused[0]


async def test_a_changed_amount_is_in_the_encrypted_resource_not_in_the_order(rig: Rig) -> None:
    rig.platform.change_next_notify_amount(1)
    await paid(rig)
    _, resource = opened(rig.platform.notifies[0].body)
    assert resource["amount"]["total"] == 1  # type: ignore[index]
    assert rig.platform.orders[NO].total == 990
