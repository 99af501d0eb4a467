"""Membership and invoice reminders: which stage is due when, sent once, and who gets none."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.settings.shop import reminder_days
from core import tables as t
from core.clock import FrozenClock
from core.models import STARS, Order
from core.repositories.reminders import ReminderRow
from core.services import Services
from core.services.reminders import days_left, membership_stages
from scheduler.jobs import JOBS, remind_invoices, remind_memberships
from scheduler.spec import JobContext
from tests.conftest import buyer, in_read, outbox_rows, pay, query, seed_memberships, stocked

VALIDITY = 30


async def _membership(shop: Services, uid: int, pid: int | None = None) -> Order:
    """``uid`` buys and is delivered one 30-day membership code (of ``pid``, or of a new product)."""
    if pid is None:
        pid = await stocked(shop, 3, name="VIP <gold>", validity_days=VALIDITY)
    order = await shop.checkout.checkout(uid, pid, 1, STARS)
    await pay(shop, order, charge=f"ch-{order.ref}")
    delivered = await shop.orders.get(order.ref)
    assert delivered.membership_expires_at is not None
    return delivered


def _ends(order: Order) -> datetime:
    assert order.membership_expires_at is not None
    return order.membership_expires_at


async def _reminders(shop: Services) -> list[tuple[str, str]]:
    """(order ref, stage) of every membership reminder in the outbox, in the order written."""
    o = t.outbox
    rows = await query(shop, select(o.c.payload).where(o.c.kind == "membership_reminder").order_by(o.c.id))
    return [(p["order_ref"], p["stage"]) for (p,) in rows]


async def _rows(shop: Services, *orders: Order) -> list[ReminderRow]:
    return await in_read(shop, lambda uow: uow.repo.reminders.for_orders([o.id for o in orders]))


def _at(clock: FrozenClock, moment: datetime) -> None:
    clock.advance(seconds=(moment - clock.now()).total_seconds())


# ---------------------------------------------------------------------------------------------- the rules


def test_stages_come_due_earliest_first_and_end_with_the_expired_notice() -> None:
    assert [s.name for s in membership_stages((1, 3))] == ["d3", "d1", "expired"]
    assert [s.before for s in membership_stages((7,))] == [timedelta(days=7), timedelta()]
    assert membership_stages(()) == ()  # REMINDER_DAYS empty: no reminders, not even the expired notice


def test_days_left_count_a_part_of_a_day_as_one() -> None:
    end = datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert days_left(end, end - timedelta(days=3)) == 3
    assert days_left(end, end - timedelta(days=2, hours=23)) == 3
    assert days_left(end, end - timedelta(hours=1)) == 1
    assert days_left(end, end) == 0 and days_left(end, end + timedelta(days=1)) == 0


@pytest.mark.parametrize(
    ("text", "days"), [("3,1", (3, 1)), (" 1, 7 ,3", (7, 3, 1)), ("", ()), ("90", (90,))]
)
def test_reminder_days_are_distinct_whole_days_latest_first(text: str, days: tuple[int, ...]) -> None:
    assert reminder_days(text) == days


@pytest.mark.parametrize("text", ["0", "3,3", "1,2,3,4,5,6", "91", "٣", "3.5", "-1", "+3", "3,,1", "x"])
def test_reminder_days_refuse_what_is_not_a_short_list_of_days(text: str) -> None:
    with pytest.raises(ValueError):
        reminder_days(text)


async def test_each_stage_is_sent_once_at_its_time(shop: Services, clock: FrozenClock) -> None:
    order = await _membership(shop, await buyer(shop))
    ctx = JobContext(shop)
    assert await remind_memberships(ctx) == 0  # 30 days left: nothing due
    for moment, stage in ((-timedelta(days=3), "d3"), (-timedelta(days=1), "d1"), (timedelta(), "expired")):
        _at(clock, _ends(order) + moment)
        assert [await remind_memberships(ctx) for _ in range(3)] == [1, 0, 0], stage
    clock.advance(days=3)
    assert await remind_memberships(ctx) == 0
    assert await _reminders(shop) == [(order.ref, "d3"), (order.ref, "d1"), (order.ref, "expired")]
    assert not any(r.skipped for r in await _rows(shop, order))


async def test_after_downtime_only_the_latest_due_stage_is_sent_and_the_passed_ones_are_skipped(
    shop: Services, clock: FrozenClock
) -> None:
    late = await _membership(shop, await buyer(shop, "1"))
    ended = await _membership(shop, await buyer(shop, "2"))
    _at(clock, _ends(late) - timedelta(hours=12))  # both past d3 and d1, nothing sent while down
    assert await shop.reminders.remind_memberships() == 2
    assert sorted(await _reminders(shop)) == sorted([(late.ref, "d1"), (ended.ref, "d1")])
    assert set(await _rows(shop, late)) == {
        ReminderRow(late.id, "d3", True),
        ReminderRow(late.id, "d1", False),
    }
    clock.advance(days=2)  # down again across the end: the expired notice, once
    assert await shop.reminders.remind_memberships() == 2
    assert await shop.reminders.remind_memberships() == 0
    assert len(await _reminders(shop)) == 4


async def test_a_stop_across_every_stage_sends_the_expired_notice_alone(
    shop: Services, clock: FrozenClock
) -> None:
    order = await _membership(shop, await buyer(shop))
    _at(clock, _ends(order) + timedelta(days=2))
    assert await shop.reminders.remind_memberships() == 1
    assert await _reminders(shop) == [(order.ref, "expired")]
    assert {(r.stage, r.skipped) for r in await _rows(shop, order)} == {
        ("d3", True),
        ("d1", True),
        ("expired", False),
    }


async def test_a_membership_ended_more_than_a_week_ago_gets_nothing(
    shop: Services, clock: FrozenClock
) -> None:
    order = await _membership(shop, await buyer(shop))
    _at(clock, _ends(order) + timedelta(days=7, minutes=1))
    assert await shop.reminders.remind_memberships() == 0
    assert await _reminders(shop) == []


async def test_a_stage_due_before_the_delivery_is_skipped(shop: Services, clock: FrozenClock) -> None:
    # A 2-day code is not followed at once by "3 days left": its d3 stage is recorded skipped, d1 is sent.
    pid = await stocked(shop, 2, name="Day pass", validity_days=2)
    order = await _membership(shop, await buyer(shop), pid)
    assert await shop.reminders.remind_memberships() == 0
    assert await _rows(shop, order) == [ReminderRow(order.id, "d3", True)]
    _at(clock, _ends(order) - timedelta(days=1))
    assert await shop.reminders.remind_memberships() == 1
    assert await _reminders(shop) == [(order.ref, "d1")]


async def test_a_buyer_who_renewed_is_not_reminded_about_the_old_order(
    shop: Services, clock: FrozenClock
) -> None:
    uid = await buyer(shop)
    old = await _membership(shop, uid)
    _at(clock, _ends(old) - timedelta(days=3))
    assert await shop.reminders.remind_memberships() == 1
    assert await shop.reminders.membership(old.ref, user_id=uid) is not None
    new = await _membership(shop, uid, old.product_id)  # renewed two days early
    assert _ends(new) > _ends(old)
    assert await shop.reminders.membership(old.ref, user_id=uid) is None  # a d3 still queued shows nothing
    for moment in (-timedelta(days=1), timedelta(minutes=1), timedelta(days=3)):
        _at(clock, _ends(old) + moment)
        assert await shop.reminders.remind_memberships() == 0
    assert await _reminders(shop) == [(old.ref, "d3")]
    _at(clock, _ends(new) - timedelta(days=3))  # the renewal has reminders of its own
    assert await shop.reminders.remind_memberships() == 1
    assert (await _reminders(shop))[-1] == (new.ref, "d3")


@pytest.mark.parametrize("how", ["bot_blocked", "blocklisted"])
async def test_a_buyer_who_cannot_be_written_to_is_skipped_and_not_retried(
    shop: Services, clock: FrozenClock, how: str
) -> None:
    uid = await buyer(shop)
    order = await _membership(shop, uid)
    block = shop.users.set_bot_blocked if how == "bot_blocked" else shop.users.set_blocklisted
    await block(uid, True)
    _at(clock, _ends(order) - timedelta(days=3))
    assert await shop.reminders.remind_memberships() == 0
    assert await _rows(shop, order) == [ReminderRow(order.id, "d3", True)]
    await block(uid, False)
    assert await shop.reminders.remind_memberships() == 0  # the skipped stage stays skipped
    _at(clock, _ends(order) - timedelta(days=1))
    assert await shop.reminders.remind_memberships() == 1  # reachable again: the next stage goes out
    assert await _reminders(shop) == [(order.ref, "d1")]


async def test_a_refunded_order_is_not_reminded(shop: Services, clock: FrozenClock) -> None:
    uid = await buyer(shop)
    order = await _membership(shop, uid)
    await shop.refunds.request_refund(order.ref, actor="cli")
    for moment in (-timedelta(days=3), -timedelta(days=1), timedelta(minutes=1)):
        _at(clock, _ends(order) + moment)
        assert await shop.reminders.remind_memberships() == 0
    assert await shop.reminders.membership(order.ref, user_id=uid) is None


async def test_no_reminder_day_set_means_no_membership_reminders(shop: Services, clock: FrozenClock) -> None:
    shop.ctx.config = dataclasses.replace(shop.ctx.config, reminder_days=())
    order = await _membership(shop, await buyer(shop))
    _at(clock, _ends(order) + timedelta(minutes=1))
    assert await shop.reminders.remind_memberships() == 0


@pytest.mark.parametrize("changed_to", [(2,), (7, 2), (3, 2)])
async def test_a_buyer_reminded_closer_to_the_end_is_not_reminded_again_when_reminder_days_change(
    shop: Services, clock: FrozenClock, changed_to: tuple[int, ...]
) -> None:
    order = await _membership(shop, await buyer(shop))
    _at(clock, _ends(order) - timedelta(hours=12))
    assert await shop.reminders.remind_memberships() == 1  # "last day" (d1)
    shop.ctx.config = dataclasses.replace(shop.ctx.config, reminder_days=changed_to)  # a restart later
    clock.advance(minutes=1)
    assert await shop.reminders.remind_memberships() == 0  # a new d2 is due before d1: passed
    _at(clock, _ends(order) + timedelta(minutes=1))
    assert await shop.reminders.remind_memberships() == 1
    assert await _reminders(shop) == [(order.ref, "d1"), (order.ref, "expired")]


async def test_many_due_reminders_go_out_in_batches_each_once(shop: Services, clock: FrozenClock) -> None:
    await seed_memberships(shop, 1203, ends_at=clock.now() + timedelta(days=2))
    assert await shop.reminders.remind_memberships(batch=500) == 1203
    assert await shop.reminders.remind_memberships(batch=500) == 0
    sent = await _reminders(shop)
    assert len(sent) == len(set(sent)) == 1203 and {stage for _, stage in sent} == {"d3"}


# ---------------------------------------------------------------------------------------------- invoices


async def _invoices(shop: Services) -> list[str]:
    return [p["order_ref"] for _, kind, p in await outbox_rows(shop) if kind == "invoice_reminder"]


async def test_an_invoice_about_to_expire_is_reminded_once(shop: Services, clock: FrozenClock) -> None:
    pid = await stocked(shop, 3)
    uid = await buyer(shop)
    order = await shop.checkout.checkout(uid, pid, 1, STARS)
    ctx = JobContext(shop)
    assert await remind_invoices(ctx) == 0  # 15 minutes left
    clock.advance(minutes=10, seconds=1)
    assert [await remind_invoices(ctx) for _ in range(3)] == [1, 0, 0]
    assert await _invoices(shop) == [order.ref]
    shown = await shop.reminders.open_invoice(order.ref, user_id=uid)
    assert shown is not None and shown.expires_at == order.expires_at
    assert await shop.reminders.open_invoice(order.ref, user_id=uid + 1) is None  # not theirs


async def test_a_paid_or_expired_order_gets_no_invoice_reminder(shop: Services, clock: FrozenClock) -> None:
    pid = await stocked(shop, 3)
    paid = await shop.checkout.checkout(await buyer(shop, "1"), pid, 1, STARS)
    lapsed = await shop.checkout.checkout(await buyer(shop, "2"), pid, 1, STARS)
    await pay(shop, paid)
    clock.advance(minutes=15)  # the other ran out unpaid (expired or not yet swept)
    assert await shop.reminders.remind_invoices() == 0
    await shop.orders.expire_due()
    assert await shop.reminders.remind_invoices() == 0
    assert await _invoices(shop) == []
    assert await shop.reminders.open_invoice(paid.ref, user_id=paid.user_id) is None
    assert await shop.reminders.open_invoice(lapsed.ref, user_id=lapsed.user_id) is None


async def test_an_invoice_reminder_paid_before_it_is_sent_shows_nothing(
    shop: Services, clock: FrozenClock
) -> None:
    pid = await stocked(shop, 3)
    order = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    clock.advance(minutes=11)
    assert await shop.reminders.remind_invoices() == 1
    await pay(shop, order)
    assert await shop.reminders.open_invoice(order.ref, user_id=order.user_id) is None


@pytest.mark.parametrize("lead", [timedelta(), timedelta(minutes=15), timedelta(minutes=20)])
async def test_invoice_reminders_need_a_lead_time_shorter_than_the_reservation(
    shop: Services, clock: FrozenClock, lead: timedelta
) -> None:
    shop.ctx.config = dataclasses.replace(shop.ctx.config, invoice_reminder=lead)
    pid = await stocked(shop, 3)
    await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    for _ in range(14):
        clock.advance(minutes=1)
        assert await shop.reminders.remind_invoices() == 0


async def test_an_invoice_reminder_skips_a_buyer_who_blocked_the_bot(
    shop: Services, clock: FrozenClock
) -> None:
    pid = await stocked(shop, 3)
    uid = await buyer(shop)
    order = await shop.checkout.checkout(uid, pid, 1, STARS)
    await shop.users.set_bot_blocked(uid, True)
    clock.advance(minutes=11)
    assert await shop.reminders.remind_invoices() == 0
    assert await _rows(shop, order) == [ReminderRow(order.id, "invoice", True)]


def test_both_reminder_jobs_are_scheduled() -> None:
    names = {j.name: j for j in JOBS}
    assert names["remind_memberships"].run is remind_memberships
    assert names["remind_invoices"].run is remind_invoices
