"""The Bot API emulator holds the bot to Telegram's rules."""

from __future__ import annotations

import asyncio
import time

import pytest

from sandbox.telegram import ApiError, Emulator, visible_text

TOKEN = "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ"


async def call(emu: Emulator, method: str, **params: object) -> object:
    return await emu.call(TOKEN, method, dict(params))


async def test_an_unknown_or_malformed_token_is_unauthorized() -> None:
    with pytest.raises(ApiError) as e:
        await Emulator(token=TOKEN).call("123456:WRONGWRONGWRONGWRONGWRONG", "getMe", {})
    assert e.value.code == 401
    with pytest.raises(ApiError):
        await Emulator().call("not a token", "getMe", {})


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"chat_id": 1, "text": ""}, "message text is empty"),
        ({"chat_id": 1, "text": "x" * 4097}, "message is too long"),
        ({"chat_id": 99, "text": "hi"}, "chat not found"),
        ({"chat_id": 1, "text": "<b>bold"}, "can't parse entities"),
        ({"chat_id": 1, "text": "<script>x</script>"}, "Unsupported start tag"),
        (
            {
                "chat_id": 1,
                "text": "ok",
                "reply_markup": {"inline_keyboard": [[{"text": "b", "callback_data": "x" * 65}]]},
            },
            "BUTTON_DATA_INVALID",
        ),
    ],
)
async def test_send_message_is_validated_like_telegram(params: dict[str, object], fragment: str) -> None:
    emu = Emulator()
    emu.user(1)
    with pytest.raises(ApiError) as e:
        await call(emu, "sendMessage", parse_mode="HTML", **params)
    assert e.value.code == 400 and fragment in e.value.description


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"prices": [{"label": "a", "amount": 5}, {"label": "b", "amount": 5}]}, "exactly one price"),
        ({"provider_token": "tok"}, "provider_token must be empty"),
        ({"prices": [{"label": "a", "amount": 0}]}, "CURRENCY_TOTAL_AMOUNT_INVALID"),
        ({"title": "t" * 33}, "INVOICE_TITLE_INVALID"),
        ({"payload": "p" * 129}, "INVOICE_PAYLOAD_INVALID"),
    ],
)
async def test_star_invoices_follow_telegrams_rules(params: dict[str, object], fragment: str) -> None:
    emu = Emulator()
    emu.user(1)
    base: dict[str, object] = {
        "chat_id": 1,
        "title": "Key",
        "description": "A key",
        "payload": "REF",
        "currency": "XTR",
        "prices": [{"label": "Key", "amount": 50}],
    }
    with pytest.raises(ApiError) as e:
        await call(emu, "sendInvoice", **{**base, **params})
    assert fragment in e.value.description


async def test_flood_limits_answer_429_with_retry_after() -> None:
    emu = Emulator(per_chat_rate=1.0, per_chat_burst=3.0)
    emu.user(1)
    for _ in range(3):
        await call(emu, "sendMessage", chat_id=1, text="hi")
    with pytest.raises(ApiError) as e:
        await call(emu, "sendMessage", chat_id=1, text="hi")
    assert e.value.code == 429 and e.value.retry_after == 1


async def test_a_user_who_blocked_the_bot_gets_403() -> None:
    emu = Emulator()
    emu.user(1)
    emu.block(1)
    with pytest.raises(ApiError) as e:
        await call(emu, "sendMessage", chat_id=1, text="hi")
    assert e.value.code == 403


INVOICE = {
    "chat_id": 1,
    "title": "Key",
    "description": "A key",
    "payload": "REF",
    "currency": "XTR",
    "prices": [{"label": "Key", "amount": 50}],
}


async def test_an_injected_403_is_worded_as_for_a_user_who_blocked_the_bot_and_sends_nothing() -> None:
    emu = Emulator()
    emu.user(1)
    emu.fail_next("sendInvoice", 403)
    with pytest.raises(ApiError) as e:
        await call(emu, "sendInvoice", **INVOICE)
    assert (e.value.code, e.value.description) == (403, "Forbidden: bot was blocked by the user")
    assert emu.messages(1) == []
    await call(emu, "sendInvoice", **INVOICE)  # only the next call fails
    assert [s.method for s in emu.messages(1)] == ["sendInvoice"]


async def test_a_stalled_call_takes_effect_at_once_and_answers_late() -> None:
    emu = Emulator()
    emu.user(1)
    emu.stall_next("sendInvoice", 0.3)
    answer = asyncio.ensure_future(call(emu, "sendInvoice", **INVOICE))
    await asyncio.sleep(0.1)
    assert [s.method for s in emu.messages(1)] == ["sendInvoice"] and not answer.done()
    assert (await answer)["invoice"]["total_amount"] == 50  # type: ignore[index]
    started = time.monotonic()
    await call(emu, "sendInvoice", **INVOICE)  # only the next call stalls
    assert time.monotonic() - started < 0.2


async def test_a_charge_is_refunded_once_and_only_to_its_payer() -> None:
    emu = Emulator()
    ch = emu.charge(1, "XTR", 50, "REF").charge_id
    with pytest.raises(ApiError, match="CHARGE_NOT_FOUND"):
        await call(emu, "refundStarPayment", user_id=2, telegram_payment_charge_id=ch)
    assert await call(emu, "refundStarPayment", user_id=1, telegram_payment_charge_id=ch) is True
    with pytest.raises(ApiError, match="ALREADY_REFUNDED"):
        await call(emu, "refundStarPayment", user_id=1, telegram_payment_charge_id=ch)
    ledger = (await call(emu, "getStarTransactions", offset=0, limit=10))["transactions"]  # type: ignore[index]
    assert [("source" in t, "receiver" in t) for t in ledger] == [(True, False), (False, True)]


async def test_an_unchanged_edit_is_refused_as_telegram_does() -> None:
    emu = Emulator()
    emu.user(1)
    msg = await call(emu, "sendMessage", chat_id=1, text="same")
    with pytest.raises(ApiError, match="not modified"):
        await call(emu, "editMessageText", chat_id=1, message_id=msg["message_id"], text="same")  # type: ignore[index]


def test_html_parse_mode_counts_only_visible_text() -> None:
    assert visible_text("<b>a</b> &amp; <tg-spoiler><code>k</code></tg-spoiler>", "HTML") == "a & k"
