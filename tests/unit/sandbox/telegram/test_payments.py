"""Invoices as Telegram checks them, charges and refunds, and forwarded invoices paid by someone else."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sandbox.telegram import ApiError, Emulator, Sent
from sandbox.telegram.payments import CURRENCIES, bounds
from tests.unit.sandbox.telegram.conftest import TOKEN, USER, call, refused

OTHER = 2
STARS: dict[str, Any] = {
    "chat_id": USER,
    "title": "Key",
    "description": "A key",
    "payload": "REF",
    "currency": "XTR",
    "prices": [{"label": "Key", "amount": 50}],
}
FIAT: dict[str, Any] = {
    **STARS,
    "currency": "USD",
    "provider_token": "tok",
    "prices": [{"label": "Key", "amount": 990}],
}


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"prices": [{"label": "a", "amount": 5}, {"label": "b", "amount": 5}]}, "exactly one price"),
        ({"provider_token": "tok"}, "provider_token must be empty"),
        ({"prices": [{"label": "a", "amount": 0}]}, "CURRENCY_TOTAL_AMOUNT_INVALID"),
        ({"prices": [{"label": "a", "amount": -5}]}, "CURRENCY_TOTAL_AMOUNT_INVALID"),
        ({"prices": [{"label": "a", "amount": 1.5}]}, "CURRENCY_TOTAL_AMOUNT_INVALID"),
        ({"prices": [{"label": "a", "amount": 10_001}]}, "STARS_INVOICE_INVALID"),
        ({"prices": []}, "prices are empty"),
        ({"prices": [{"label": "", "amount": 5}]}, "label must be non-empty"),
        ({"prices": [{"label": "  ", "amount": 5}]}, "label must be non-empty"),
        ({"title": ""}, "title is empty"),
        ({"title": "t" * 33}, "INVOICE_TITLE_INVALID"),
        ({"description": ""}, "INVOICE_DESCRIPTION_INVALID"),
        ({"description": "d" * 256}, "INVOICE_DESCRIPTION_INVALID"),
        ({"payload": ""}, "INVOICE_PAYLOAD_INVALID"),
        ({"payload": "p" * 129}, "INVOICE_PAYLOAD_INVALID"),
        ({"payload": "键" * 43}, "INVOICE_PAYLOAD_INVALID"),  # 129 bytes
        ({"start_parameter": "has space"}, "START_PARAM_INVALID"),
        ({"start_parameter": "x" * 65}, "START_PARAM_INVALID"),
        ({"currency": "ZZZ", "provider_token": "tok"}, "CURRENCY_INVALID"),
        ({"currency": "usd", "provider_token": "tok"}, "CURRENCY_INVALID"),
        ({"currency": "BTC", "provider_token": "tok"}, "CURRENCY_INVALID"),
    ],
)
async def test_invoice_fields_follow_telegrams_rules(
    emu: Emulator, params: dict[str, Any], fragment: str
) -> None:
    e = await refused(emu, "sendInvoice", **{**STARS, **params})
    assert e.code == 400 and fragment in e.description


async def test_stars_invoices_take_1_to_10000_stars(emu: Emulator) -> None:
    for amount in (1, 10_000):
        await call(emu, "sendInvoice", **{**STARS, "prices": [{"label": "k", "amount": amount}]})


async def test_fiat_invoices_need_a_provider_token_and_an_amount_between_about_1_and_10000_dollars(
    emu: Emulator,
) -> None:
    assert (
        "PAYMENT_PROVIDER_INVALID"
        in (await refused(emu, "sendInvoice", **{**FIAT, "provider_token": ""})).description
    )
    for currency, amount, ok in [
        ("USD", 99, False),
        ("USD", 100, True),
        ("USD", 1_000_000, True),
        ("USD", 1_000_001, False),
        ("RUB", 8653, True),  # Telegram's currencies.json: RUB min_amount 8653, max_amount 86530475
        ("RUB", 8652, False),
        ("RUB", 86_530_001, False),
        ("JPY", 150, True),  # no minor unit
        ("JPY", 149, False),
        ("CNY", 720, True),
        ("CNY", 700, False),
    ]:
        params = {**FIAT, "currency": currency, "prices": [{"label": "k", "amount": amount}]}
        if ok:
            await call(emu, "sendInvoice", **params)
        else:
            e = await refused(emu, "sendInvoice", **params)
            assert "CURRENCY_TOTAL_AMOUNT_INVALID" in e.description, (currency, amount)
    assert {"USD", "EUR", "CNY", "RUB", "GBP"} <= set(CURRENCIES) and bounds("EUR") == (92, 920_000)


async def test_the_invoice_keyboard_starts_with_a_pay_button(emu: Emulator) -> None:
    url = {"inline_keyboard": [[{"text": "Site", "url": "https://example.com"}]]}
    assert "Pay button" in (await refused(emu, "sendInvoice", **STARS, reply_markup=url)).description
    pay = {
        "inline_keyboard": [[{"text": "Pay", "pay": True}], [{"text": "Site", "url": "https://example.com"}]]
    }
    await call(emu, "sendInvoice", **STARS, reply_markup=pay)


async def test_a_charge_is_refunded_once_and_only_to_its_payer(emu: Emulator) -> None:
    ch = emu.charge(1, "XTR", 50, "REF").charge_id
    with pytest.raises(ApiError, match="CHARGE_NOT_FOUND"):
        await call(emu, "refundStarPayment", user_id=2, telegram_payment_charge_id=ch)
    assert await call(emu, "refundStarPayment", user_id=1, telegram_payment_charge_id=ch) is True
    with pytest.raises(ApiError, match="ALREADY_REFUNDED"):
        await call(emu, "refundStarPayment", user_id=1, telegram_payment_charge_id=ch)
    ledger = (await call(emu, "getStarTransactions", offset=0, limit=10))["transactions"]
    assert [("source" in t, "receiver" in t) for t in ledger] == [(True, False), (False, True)]


async def answer_pre_checkouts(emu: Emulator, seen: list[dict[str, Any]]) -> None:
    """A minimal bot: says yes to every pre-checkout query and remembers what it saw."""
    offset = 0
    while True:
        for update in await call(emu, "getUpdates", offset=offset, timeout=1):
            offset = update["update_id"] + 1
            seen.append(update)
            if q := update.get("pre_checkout_query"):
                await call(emu, "answerPreCheckoutQuery", pre_checkout_query_id=q["id"], ok=True)


async def invoice(emu: Emulator, **params: Any) -> Sent:
    await call(emu, "sendInvoice", **{**STARS, **params})
    return emu.messages(USER)[-1]


async def test_a_forwarded_invoice_without_start_parameter_can_be_paid_by_whoever_sees_it(
    emu: Emulator,
) -> None:
    seen: list[dict[str, Any]] = []
    bot = asyncio.create_task(answer_pre_checkouts(emu, seen))
    try:
        copy = emu.forward(USER, await invoice(emu), OTHER)
        assert copy.buttons[0].get("pay") is True and copy.message["forward_origin"]["sender_user"]["is_bot"]
        paid = await emu.pay(OTHER, copy)
        assert paid["paid"]
        await asyncio.sleep(0.05)
    finally:
        bot.cancel()
    assert emu.payments[paid["charge_id"]].user_id == OTHER
    pre = next(u["pre_checkout_query"] for u in seen if "pre_checkout_query" in u)
    assert pre["from"]["id"] == OTHER and pre["invoice_payload"] == "REF"
    success = next(u["message"] for u in seen if "successful_payment" in u.get("message", {}))
    assert success["from"]["id"] == OTHER and success["chat"]["id"] == OTHER


async def test_a_forwarded_invoice_with_a_start_parameter_shows_a_deep_link_and_cannot_be_paid(
    emu: Emulator,
) -> None:
    copy = emu.forward(USER, await invoice(emu, start_parameter="order-42"), OTHER)
    assert copy.buttons == [{"text": "Key", "url": f"https://t.me/{emu.bot_username}?start=order-42"}]
    result = await emu.pay(OTHER, copy)
    assert result["paid"] is False and "not payable" in result["error"] and emu.payments == {}


async def test_only_someone_who_sees_an_invoice_can_pay_or_forward_it(emu: Emulator) -> None:
    sent = await invoice(emu)
    with pytest.raises(ValueError, match="can't see"):
        await emu.pay(OTHER, sent)
    with pytest.raises(ValueError, match="can't see"):
        emu.forward(OTHER, sent, 3)
    assert TOKEN  # the same emulator serves HTTP with this token


TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"


async def pending_pre_checkout(emu: Emulator) -> dict[str, Any]:
    """The pre-checkout query a payment under way queued for the bot."""
    for _ in range(100):
        for update in await call(emu, "getUpdates"):
            if q := update.get("pre_checkout_query"):
                return q  # type: ignore[no-any-return]
        await asyncio.sleep(0.01)
    raise AssertionError("no pre-checkout query was queued")


def queued_payments(emu: Emulator) -> list[dict[str, Any]]:
    return [u for u in emu._updates if "successful_payment" in u.get("message", {})]


async def test_a_pre_checkout_answer_later_than_10_seconds_is_refused_and_nothing_is_charged(
    emu: Emulator,
) -> None:
    assert Emulator().pre_checkout_timeout == 10
    now = [1000.0]
    emu.clock = lambda: now[0]
    paying = asyncio.create_task(emu.pay(USER, await invoice(emu)))
    query = await pending_pre_checkout(emu)
    now[0] += 10.1
    e = await refused(emu, "answerPreCheckoutQuery", pre_checkout_query_id=query["id"], ok=True)
    assert (e.code, e.description) == (400, TOO_OLD)
    assert await asyncio.wait_for(paying, 1) == {"paid": False, "error": "timeout"}
    assert emu.payments == {} and emu.star_ledger == [] and queued_payments(emu) == []


async def test_a_pre_checkout_answered_within_10_seconds_is_charged_and_reported(emu: Emulator) -> None:
    now = [1000.0]
    emu.clock = lambda: now[0]
    paying = asyncio.create_task(emu.pay(USER, await invoice(emu)))
    query = await pending_pre_checkout(emu)
    now[0] += 9.9
    assert await call(emu, "answerPreCheckoutQuery", pre_checkout_query_id=query["id"], ok=True) is True
    paid = await asyncio.wait_for(paying, 1)
    assert paid["paid"] and list(emu.payments) == [paid["charge_id"]] and len(queued_payments(emu)) == 1


async def test_a_pre_checkout_query_is_answered_once_and_only_with_an_id_telegram_issued(
    emu: Emulator,
) -> None:
    for qid in ("", "12345"):
        e = await refused(emu, "answerPreCheckoutQuery", pre_checkout_query_id=qid, ok=True)
        assert e.description == TOO_OLD
    paying = asyncio.create_task(emu.pay(USER, await invoice(emu)))
    query = await pending_pre_checkout(emu)
    assert await call(emu, "answerPreCheckoutQuery", pre_checkout_query_id=query["id"], ok=True) is True
    e = await refused(emu, "answerPreCheckoutQuery", pre_checkout_query_id=query["id"], ok=True)
    assert e.description == TOO_OLD
    assert (await asyncio.wait_for(paying, 1))["paid"]
