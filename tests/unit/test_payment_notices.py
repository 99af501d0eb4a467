"""Durable payment notices: a notice is written as received before it is processed, and one whose
processing fails is retried until it succeeds; replaying one changes nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from core import tables as t
from core.clock import FrozenClock
from core.messages import KeysDelivered
from core.models import STARS, Charge, Order, OrderStatus, PaymentStatus
from core.repositories import PaymentNoticeRepo, PaymentRepo, UserRepo
from core.services import Services
from tests.conftest import buyer, outbox_rows, query, stocked


def locked() -> OperationalError:
    return OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))


async def an_order(shop: Services, *, keys: int = 1) -> tuple[int, Order]:
    """A buyer and their pending order of one key, from a product stocked with ``keys``."""
    pid = await stocked(shop, keys)
    uid = await buyer(shop)
    return uid, await shop.checkout.checkout(uid, pid, 1, STARS)


async def notice(shop: Services, order: Any, charge: str, payer: int, amount: int | None = None) -> int:
    paid = order.amount if amount is None else amount
    return await shop.payments.record_notice(
        Charge("telegram", charge, order.ref, paid, order.currency, payer_id=payer),
        raw={"telegram_payment_charge_id": charge},
    )


# ---------------------------------------------------------------- recording


async def test_a_payment_notice_is_recorded_once_per_charge(shop: Services) -> None:
    uid, o = await an_order(shop)
    first = await notice(shop, o, "c1", uid)
    assert await notice(shop, o, "c1", uid) == first
    rows = await query(shop, select(t.payment_notices))
    assert [(r.charge_id, r.status, r.payer_id, r.raw) for r in rows] == [
        ("c1", "pending", uid, {"telegram_payment_charge_id": "c1"})
    ]


async def test_recording_a_notice_retries_a_briefly_locked_database(
    shop: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    uid, o = await an_order(shop)
    real = PaymentNoticeRepo.add_once
    fails = [locked(), locked()]

    def flaky(self: PaymentNoticeRepo, **values: Any) -> int | None:
        if fails:
            raise fails.pop()
        return real(self, **values)

    monkeypatch.setattr(PaymentNoticeRepo, "add_once", flaky)
    assert await notice(shop, o, "c1", uid) > 0


def lookups_fail_twice(monkeypatch: pytest.MonkeyPatch) -> list[Exception]:
    """The next two user lookups by channel identity fail as a locked database does; returns what is left
    of those failures (empty once both were met)."""
    real = UserRepo.get_by_external
    fails: list[Exception] = [locked(), locked()]

    def flaky(self: UserRepo, channel: str, external_id: str) -> Any:
        if fails:
            raise fails.pop()
        return real(self, channel, external_id)

    monkeypatch.setattr(UserRepo, "get_by_external", flaky)
    return fails


async def test_the_payer_behind_a_payment_is_found_even_while_the_database_is_briefly_locked(
    shop: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every update needs its user before its handler runs; for a payment that is the payer, and a lookup
    that failed once would lose the update (and the charge) before the notice could be written."""
    fails = lookups_fail_twice(monkeypatch)
    user = await shop.users.ensure("telegram", "777")
    assert user.external_id == "777" and not fails


async def test_the_user_behind_an_update_is_looked_up_even_while_the_database_briefly_fails(
    shop: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every update looks its user up before its handler runs (a payment, its payer); a lookup that
    failed once would lose the update, and with it the charge, before the notice could be written."""
    await buyer(shop, "777")
    fails = lookups_fail_twice(monkeypatch)
    user = await shop.users.find("telegram", "777")
    assert user is not None and user.external_id == "777" and not fails


# ---------------------------------------------------------------- processing and retrying


def recording_a_payment_fails(monkeypatch: pytest.MonkeyPatch, *errors: Exception) -> None:
    """The next payment rows to be written fail with ``errors``, one each; the ones after are written."""
    real = PaymentRepo.add_once
    fails = list(reversed(errors))

    def flaky(self: PaymentRepo, **values: Any) -> bool:
        if fails:
            raise fails.pop()
        return real(self, **values)

    monkeypatch.setattr(PaymentRepo, "add_once", flaky)


async def test_a_notice_whose_processing_fails_stays_pending_and_the_retry_job_delivers_it(
    shop: Services, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    uid, o = await an_order(shop)
    nid = await notice(shop, o, "c1", uid)
    recording_a_payment_fails(monkeypatch, locked())
    first = await shop.payments.process_notice(nid)
    assert not first.ok and first.attempts == 1 and first.transient
    (row,) = await query(shop, select(t.payment_notices))
    assert row.status == "pending" and "locked" in row.last_error and row.next_attempt_at > clock.now()
    assert await shop.payments.process_due_notices() == []  # not due yet: backing off
    clock.advance(minutes=5)
    (again,) = await shop.payments.process_due_notices()
    assert again.ok and again.result is not None and again.result.outcome is PaymentStatus.ACCEPTED
    assert (await shop.orders.get(o.ref)).status is OrderStatus.DELIVERED
    assert await query(shop, select(t.payment_notices.c.status)) == [("done",)]
    clock.advance(minutes=5)
    assert await shop.payments.process_due_notices() == []


async def test_a_replayed_notice_changes_nothing(shop: Services) -> None:
    uid, o = await an_order(shop, keys=2)
    nid = await notice(shop, o, "c1", uid)
    assert (await shop.payments.process_notice(nid)).ok
    before = await outbox_rows(shop)
    again = await shop.payments.process_notice(await notice(shop, o, "c1", uid))
    assert again.ok and again.result is not None and again.result.replay
    assert await outbox_rows(shop) == before == [(uid, KeysDelivered.KIND, {"order_ref": o.ref})]


async def test_recording_a_notice_retries_while_another_process_really_holds_the_write_lock(
    shop: Services,
) -> None:
    """SQLite's own "database is locked" (a CLI import publishing in another process outlasts the busy
    timeout) is a transient error like any other: the notice is written once the lock is free."""
    uid, o = await an_order(shop)

    def short_busy_timeout(conn: Any) -> None:  # the writer's connection: give up on a lock at once
        conn.connection.dbapi_connection.execute("PRAGMA busy_timeout=20")

    await shop.ctx.db.run(short_busy_timeout)
    other = sqlite3.connect(shop.ctx.db.url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process takes the write lock ...
    release = asyncio.get_running_loop().call_later(0.25, other.execute, "ROLLBACK")  # ... for a moment
    try:
        nid = await notice(shop, o, "c1", uid)
    finally:
        release.cancel()
        other.close()
    assert nid > 0
    assert await query(shop, select(t.payment_notices.c.charge_id)) == [("c1",)]


# ---------------------------------------------------------------- receiving: record and process at once


def a_charge(order: Any, charge: str, payer: int) -> Charge:
    return Charge("telegram", charge, order.ref, order.amount, order.currency, payer_id=payer)


async def test_a_received_notice_is_recorded_confirmed_and_done_in_one_write_transaction(
    shop: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    uid, o = await an_order(shop)
    writes: list[str] = []
    real = shop.ctx.db.run

    async def counted(job: Any, *args: Any) -> Any:
        writes.append(getattr(job, "__name__", "?"))
        return await real(job, *args)

    monkeypatch.setattr(shop.ctx.db, "run", counted)
    outcome = await shop.payments.receive_notice(a_charge(o, "c1", uid), raw={"id": "c1"})
    assert outcome.ok and outcome.result is not None and outcome.result.outcome is PaymentStatus.ACCEPTED
    assert (outcome.charge_id, outcome.order_ref) == ("c1", o.ref)
    assert len(writes) == 1
    assert await query(shop, select(t.payment_notices.c.charge_id, t.payment_notices.c.status)) == [
        ("c1", "done")
    ]
    assert (await shop.orders.get(o.ref)).status is OrderStatus.DELIVERED


async def test_a_received_notice_whose_transaction_fails_once_is_recorded_and_confirmed_at_once(
    shop: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    uid, o = await an_order(shop)
    recording_a_payment_fails(monkeypatch, locked())
    outcome = await shop.payments.receive_notice(a_charge(o, "c1", uid), raw={"id": "c1"})
    assert outcome.ok and outcome.result is not None and outcome.result.outcome is PaymentStatus.ACCEPTED
    assert (outcome.charge_id, outcome.order_ref) == ("c1", o.ref)
    assert await query(shop, select(t.payment_notices.c.status)) == [("done",)]
    assert (await shop.orders.get(o.ref)).status is OrderStatus.DELIVERED


async def test_a_received_notice_whose_processing_keeps_failing_is_recorded_alone_and_retried(
    shop: Services, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failed transaction took the notice with it: it is written on its own, pending, backing off."""
    uid, o = await an_order(shop)
    hiccup = RuntimeError("the disk hiccupped")
    recording_a_payment_fails(monkeypatch, hiccup, hiccup)
    first = await shop.payments.receive_notice(a_charge(o, "c1", uid), raw={"id": "c1"})
    assert not first.ok and first.attempts == 1 and not first.transient
    assert (first.charge_id, first.order_ref) == ("c1", o.ref)
    (row,) = await query(shop, select(t.payment_notices))
    assert row.status == "pending" and "hiccupped" in row.last_error and row.raw == {"id": "c1"}
    assert await query(shop, select(t.payments)) == []
    clock.advance(minutes=5)
    (again,) = await shop.payments.process_due_notices()
    assert again.ok and (await shop.orders.get(o.ref)).status is OrderStatus.DELIVERED


async def test_a_notice_received_twice_is_confirmed_once(shop: Services) -> None:
    uid, o = await an_order(shop, keys=2)
    assert (await shop.payments.receive_notice(a_charge(o, "c1", uid), raw={})).ok
    before = await outbox_rows(shop)
    again = await shop.payments.receive_notice(a_charge(o, "c1", uid), raw={})
    assert again.ok and again.result is not None and again.result.replay
    assert (again.charge_id, again.order_ref) == ("c1", o.ref)
    assert await outbox_rows(shop) == before == [(uid, KeysDelivered.KIND, {"order_ref": o.ref})]
    assert len(await query(shop, select(t.payment_notices))) == 1
