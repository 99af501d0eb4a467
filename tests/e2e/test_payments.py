"""Every charge ends delivered or refunded to whoever paid: the real bot against the emulator."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from core import tables as t
from core.models import OrderStatus
from core.repositories import OrderRepo, PaymentRepo
from sandbox.telegram import Sent
from scheduler.jobs import process_payment_notices
from scheduler.spec import JobContext
from tests.conftest import query
from tests.e2e.conftest import ADMIN, Shop

BUYER, OTHER = 601, 602


@pytest.fixture
async def fiat(shop: Shop) -> Shop:
    """The same shop, its bot replaced by one with a fiat provider token."""
    await shop.rebuild(payment_provider_token="PROVIDER:TEST", shop_currency="USD")
    return shop


async def outbox_statuses(shop: Shop) -> list[tuple[str, str]]:
    rows = await query(shop.services, select(t.outbox.c.kind, t.outbox.c.status))
    return [(r[0], r[1]) for r in rows]


async def test_a_fiat_payment_whose_processing_fails_twice_is_delivered_by_the_retry_job(
    fiat: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The payment's transaction fails, and so does the attempt made at once after recording the notice
    on its own: the payer is told it is being processed, and the retry job delivers."""
    shop = fiat
    await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    listing = await shop.say(BUYER, "/catalog")
    card = await shop.tap(BUYER, listing, "Steam")
    invoice = await shop.tap(BUYER, card, "💳")
    real = PaymentRepo.add_once
    fails = [OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked")) for _ in "12"]

    def flaky(self: PaymentRepo, **values: Any) -> bool:
        if fails:
            raise fails.pop()
        return real(self, **values)

    monkeypatch.setattr(PaymentRepo, "add_once", flaky)
    assert (await shop.emu.pay(BUYER, invoice))["paid"]
    told = await shop.emu.wait_for(BUYER, lambda s: "being processed" in s.text)
    assert "received" in told.text
    shop.clock.advance(minutes=5)
    assert await process_payment_notices(JobContext(shop.services)) == 1
    keys = await shop.emu.wait_for(BUYER, lambda s: "delivered" in s.text)
    assert "KEY-" in keys.text


async def test_invoices_carry_a_unique_start_parameter_so_forwarded_copies_cannot_be_paid(shop: Shop) -> None:
    await shop.product(keys=2)
    await shop.product(keys=2, name="Netflix")
    shop.emu.user(BUYER, "Ann")
    await shop.buy_one(BUYER, "Steam")
    await shop.buy_one(BUYER, "Netflix")
    # a call the flood limit refused is sent again with the same parameters: count distinct invoices
    params = {p.get("start_parameter") for m, p in shop.emu.calls if m == "sendInvoice"}
    assert len(params) == 2
    assert all(isinstance(s, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", s) for s in params)


async def test_pre_checkout_refuses_someone_who_does_not_own_the_order(shop: Shop) -> None:
    await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    shop.emu.user(OTHER, "Bob")
    invoice = await shop.buy_one(BUYER)
    # An invoice sent before invoices carried a start_parameter: a forwarded copy has a Pay button.
    legacy = Sent({**invoice.message, "invoice": {**invoice.message["invoice"], "start_parameter": ""}}, "x")
    copy = shop.emu.forward(BUYER, legacy, OTHER)
    result = await shop.emu.pay(OTHER, copy)
    assert result["paid"] is False and "another buyer" in result["error"]
    assert shop.emu.payments == {}


async def test_a_payment_from_someone_else_is_refunded_to_that_payer_and_delivers_nothing(shop: Shop) -> None:
    pid = await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    shop.emu.user(OTHER, "Bob")
    invoice = await shop.buy_one(BUYER)
    ref = invoice.message["_payload"]
    # Telegram charged Bob anyway (say, a client that skipped our pre-checkout answer).
    charge = shop.emu.charge(OTHER, "XTR", 50, ref).charge_id
    await shop.emu.deliver_payment(OTHER, charge)
    told = await shop.emu.wait_for(OTHER, lambda s: "refunded" in s.text)
    assert "another buyer" in told.text and shop.emu.payments[charge].refunded
    assert not any("delivered" in s.text for s in shop.emu.messages(BUYER) + shop.emu.messages(OTHER))
    assert (await shop.services.orders.get(ref)).status is OrderStatus.PENDING
    assert await shop.services.stock.available(pid) == 0  # still reserved for its owner


async def test_an_admin_refund_of_a_second_payer_goes_to_that_payers_charge(shop: Shop) -> None:
    await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    shop.emu.user(OTHER, "Bob")
    invoice = await shop.buy_one(BUYER)
    await shop.emu.pay(BUYER, invoice)
    await shop.emu.wait_for(BUYER, lambda s: "delivered" in s.text)
    await shop.services.refunds.request_refund(invoice.message["_payload"], actor="admin:1")
    await shop.emu.wait_for(BUYER, lambda s: "refunded" in s.text)
    assert all(p.refunded for p in shop.emu.payments.values())


@pytest.mark.expect_errors
async def test_stars_reconciliation_refunds_an_entry_it_cannot_confirm_and_still_recovers_later_ones(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    await shop.product(keys=3)
    shop.emu.user(BUYER, "Ann")
    shop.emu.user(OTHER, "Bob")
    poisoned = await shop.buy_one(BUYER)
    good = await shop.buy_one(OTHER)
    poison_ref = poisoned.message["_payload"]
    real = OrderRepo.with_product

    def broken(self: OrderRepo, ref: str) -> Any:
        if ref == poison_ref:
            raise RuntimeError("this entry cannot be confirmed")
        return real(self, ref)

    monkeypatch.setattr(OrderRepo, "with_product", broken)
    # Three charges whose updates never arrived: garbage, one that breaks processing, a good one.
    garbage = shop.emu.charge(BUYER, "XTR", 5, "x" * 300).charge_id
    bad = shop.emu.charge(BUYER, "XTR", 50, poison_ref).charge_id
    fine = shop.emu.charge(OTHER, "XTR", 50, good.message["_payload"]).charge_id
    await shop.front.ledger.reconcile()
    await shop.emu.wait_for(OTHER, lambda s: "delivered" in s.text)
    for charge in (garbage, bad):
        for _ in range(100):
            if shop.emu.payments[charge].refunded:
                break
            await asyncio.sleep(0.05)
        assert shop.emu.payments[charge].refunded, charge
    assert not shop.emu.payments[fine].refunded
    alert = await shop.emu.wait_for(ADMIN, lambda s: bad in s.text)
    assert "reconcil" in alert.text.lower()
    await shop.front.ledger.reconcile()  # the cursor moved past all three
    offsets = [int(p.get("offset") or 0) for m, p in shop.emu.calls if m == "getStarTransactions"]
    assert offsets[-1] >= 3


async def test_a_stars_refund_that_fails_for_a_while_is_retried_until_it_goes_through(shop: Shop) -> None:
    await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    invoice = await shop.buy_one(BUYER)
    charge = (await shop.emu.pay(BUYER, invoice))["charge_id"]
    await shop.emu.wait_for(BUYER, lambda s: "delivered" in s.text)
    shop.emu.fail_next("refundStarPayment", 500)
    shop.emu.fail_next("refundStarPayment", 429, retry_after=1)
    await shop.services.refunds.request_refund(invoice.message["_payload"], actor="admin:1")
    await shop.emu.wait_for(BUYER, lambda s: "refunded" in s.text, within=10)
    assert shop.emu.payments[charge].refunded
    assert (await shop.services.orders.get(invoice.message["_payload"])).status is OrderStatus.REFUNDED


@pytest.mark.expect_errors
async def test_a_stars_refund_telegram_refuses_for_good_is_failed_and_reported_to_admins(shop: Shop) -> None:
    await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    invoice = await shop.buy_one(BUYER)
    ref = invoice.message["_payload"]
    charge = (await shop.emu.pay(BUYER, invoice))["charge_id"]
    await shop.emu.wait_for(BUYER, lambda s: "delivered" in s.text)
    shop.emu.fail_next("refundStarPayment", 400)
    await shop.services.refunds.request_refund(ref, actor="admin:1")
    alert = await shop.emu.wait_for(ADMIN, lambda s: charge in s.text)
    assert ref in alert.text and "50" in alert.text
    for _ in range(100):
        if ("payment_refund", "failed") in await outbox_statuses(shop):
            break
        await asyncio.sleep(0.05)
    assert ("payment_refund", "failed") in await outbox_statuses(shop)
    assert not shop.emu.payments[charge].refunded


@pytest.mark.expect_errors
async def test_a_fiat_refund_is_handed_to_the_admins(fiat: Shop) -> None:
    shop = fiat
    await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    listing = await shop.say(BUYER, "/catalog")
    card = await shop.tap(BUYER, listing, "Steam")
    invoice = await shop.tap(BUYER, card, "💳")
    charge = (await shop.emu.pay(BUYER, invoice))["charge_id"]
    await shop.emu.wait_for(BUYER, lambda s: "delivered" in s.text)
    await shop.services.refunds.request_refund(invoice.message["_payload"], actor="admin:1")
    alert = await shop.emu.wait_for(ADMIN, lambda s: charge in s.text)
    assert invoice.message["_payload"] in alert.text and "9.90" in alert.text


@pytest.mark.expect_errors
async def test_a_newcomers_payment_that_cannot_be_recorded_still_leaves_the_notice_in_the_log(
    shop: Shop, logged_errors: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The payer of a forwarded invoice may have no row yet; when the database cannot make one, the
    payment cannot be recorded either, and the log line with the whole notice is the one copy left."""
    await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    shop.emu.user(OTHER, "Bob")
    invoice = await shop.buy_one(BUYER)
    charge = shop.emu.charge(OTHER, "XTR", 50, invoice.message["_payload"]).charge_id

    async def unavailable(*args: object, **kwargs: object) -> None:
        raise OperationalError("INSERT INTO users", {}, sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr(shop.services.users, "ensure", unavailable)
    await shop.emu.deliver_payment(OTHER, charge)
    for _ in range(100):
        if any(r.levelname == "ERROR" for r in logged_errors.records):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    kept = [r.getMessage() for r in logged_errors.records if r.levelname == "CRITICAL"]
    assert any(charge in line and str(OTHER) in line for line in kept), kept
