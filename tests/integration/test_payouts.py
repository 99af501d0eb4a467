"""Withdrawals on both databases: the whole available balance of one currency, at least PAYOUT_MINIMUM after
conversion (Stars only at STARS_PAYOUT_RATE); one open request per currency; two requests at once, or a
request and a payment with the balance at once, never take the same money; a rejected request gives the
money back, a paid one moves it to paid out; two admins deciding at once make one decision; and
``core.ledger.check`` stays clean after every step."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from sqlalchemy import func, select, update

from core import tables as t
from core.clock import FrozenClock
from core.context import Context, ShopConfig, UnitOfWork
from core.errors import (
    PayoutAlreadyDecided,
    PayoutAlreadyOpen,
    PayoutBelowMinimum,
    PayoutNotFound,
    PayoutNotWithdrawable,
    PayoutTextInvalid,
    PayoutUncovered,
)
from core.ledger import post
from core.models import STARS, AccountKind, PayoutStatus
from core.services import Services
from core.services.payouts import Blocked, Requested
from tests.conftest import buyer, in_read, in_write, outbox_rows, pay, payment_row, stocked

USD = "USD"


def _configured(shop: Services, **config: Any) -> Services:
    """The same shop (database, vault, clock) with other settings."""
    ctx = shop.ctx
    return Services(
        Context(db=ctx.db, vault=ctx.vault, config=ShopConfig(currency=USD, **config), clock=ctx.clock)
    )


async def _distributor(
    shop: Services, clock: FrozenClock, n: int, *, price: int = 12_000, stars: int = 0
) -> int:
    """A distributor whose referral bought once (for ``price`` cents, or ``stars`` Stars) and whose 10 %
    commission settled: their available balance. Returns their user id."""
    dist = await buyer(shop, f"8{n:03d}1")
    uid = await buyer(shop, f"8{n:03d}2")
    await in_write(
        shop,
        lambda uow: uow.repo.conn.execute(
            update(t.users).where(t.users.c.id == uid).values(referrer_id=dist)
        ),
    )
    pid = await stocked(shop, 1, price=price, price_stars=stars or 50)
    order = await shop.checkout.checkout(uid, pid, 1, STARS if stars else USD)
    await pay(shop, order, charge=f"ch-{n}")
    clock.advance(days=7)
    assert await shop.ledger.settle() >= 1
    return dist


async def _balance(shop: Services, owner: int, kind: AccountKind, currency: str = USD) -> int:
    return sum(
        b.amount for b in await shop.ledger.balances(owner) if b.kind is kind and b.currency == currency
    )


async def _balances(shop: Services, owner: int, currency: str = USD) -> dict[str, int]:
    kinds = (AccountKind.AVAILABLE, AccountKind.WITHDRAWING, AccountKind.PAID_OUT, AccountKind.SPENT)
    return {k.value: await _balance(shop, owner, k, currency) for k in kinds}


async def _clean(shop: Services) -> None:
    assert await shop.ledger.check() == []


async def _requests(shop: Services) -> int:
    return int(
        await in_read(
            shop,
            lambda uow: uow.repo.conn.execute(
                select(func.count()).select_from(t.payout_requests)
            ).scalar_one(),
        )
    )


async def test_a_balance_below_the_minimum_is_refused_and_nothing_moves(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    dist = await _distributor(shop, clock, 1, price=9_990)  # 999 cents: one short of 10.00
    overview = await shop.payouts.overview(dist)
    assert [(o.currency, o.available, o.payout_amount, o.blocked) for o in overview.options] == [
        (USD, 999, 999, Blocked.BELOW_MINIMUM)
    ]
    with pytest.raises(PayoutBelowMinimum):
        await shop.payouts.request(dist, USD, "PayPal ann@example.com", key="k1")
    assert await _balances(shop, dist) == {"available": 999, "withdrawing": 0, "paid_out": 0, "spent": 0}
    assert await _requests(shop) == 0
    with pytest.raises(PayoutBelowMinimum):  # no balance at all in a currency
        await shop.payouts.request(await buyer(shop, "8999"), USD, "x", key="k2")
    await _clean(shop)


async def test_stars_without_a_rate_are_only_spent_and_with_one_are_withdrawn_at_it(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    dist = await _distributor(shop, clock, 1, stars=500)  # 50 Stars available
    option = (await shop.payouts.overview(dist)).option(STARS)
    assert option is not None and (option.available, option.blocked) == (50, Blocked.NOT_WITHDRAWABLE)
    with pytest.raises(PayoutNotWithdrawable):
        await shop.payouts.request(dist, STARS, "PayPal ann@example.com", key="k1")
    assert await _requests(shop) == 0

    low = _configured(shop, stars_payout_rate=19)  # 950 cents: under the minimum
    assert (await low.payouts.overview(dist)).options[0].blocked is Blocked.BELOW_MINIMUM
    with pytest.raises(PayoutBelowMinimum):
        await low.payouts.request(dist, STARS, "PayPal ann@example.com", key="k1")

    rated = _configured(shop, stars_payout_rate=25)  # 0.25 USD a Star
    option = (await rated.payouts.overview(dist)).option(STARS)
    assert option is not None and (option.payout_amount, option.blocked) == (1250, None)
    done = await rated.payouts.request(dist, STARS, "PayPal ann@example.com", key="k1")
    p = done.payout
    assert (p.amount, p.currency, p.payout_amount, p.payout_currency) == (50, STARS, 1250, USD)
    assert await _balances(shop, dist, STARS) == {
        "available": 0,
        "withdrawing": 50,
        "paid_out": 0,
        "spent": 0,
    }
    await _clean(shop)


async def test_a_request_takes_the_whole_balance_once_and_a_replay_returns_it(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    dist = await _distributor(shop, clock, 1)
    done = await shop.payouts.request(dist, USD, "  Alipay\u200b 138 0000 0000\n", key="k1")
    assert not done.replay
    p = done.payout
    assert (p.status, p.amount, p.payout_amount, p.details) == (
        PayoutStatus.REQUESTED,
        1200,
        1200,
        "Alipay 138 0000 0000",
    )
    assert await _balances(shop, dist) == {"available": 0, "withdrawing": 1200, "paid_out": 0, "spent": 0}
    again = await shop.payouts.request(dist, USD, "something else", key="k1")
    assert again.replay and again.payout == p
    with pytest.raises(PayoutAlreadyOpen):
        await shop.payouts.request(dist, USD, "Alipay", key="k2")
    option = (await shop.payouts.overview(dist)).option(USD)
    assert option is not None and option.blocked is Blocked.OPEN and option.open == p
    assert await _requests(shop) == 1
    assert await _balances(shop, dist) == {"available": 0, "withdrawing": 1200, "paid_out": 0, "spent": 0}
    await _clean(shop)


async def test_two_concurrent_requests_withdraw_the_money_once(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    dist = await _distributor(shop, clock, 1)
    results = await asyncio.gather(
        *(shop.payouts.request(dist, USD, "Alipay 1380000", key=f"k{i}") for i in range(4)),
        return_exceptions=True,
    )
    made = [r for r in results if isinstance(r, Requested)]
    assert len(made) == 1, results
    assert all(isinstance(r, (Requested, PayoutAlreadyOpen)) for r in results), results
    assert await _requests(shop) == 1
    assert await _balances(shop, dist) == {"available": 0, "withdrawing": 1200, "paid_out": 0, "spent": 0}
    await _clean(shop)


async def test_requests_racing_the_settlement_of_more_commission_withdraw_what_settled_before_them(
    any_shop: Services, clock: FrozenClock
) -> None:
    """Each request takes the available balance as the settlement left it or found it, never part of a
    settlement; what it did not take stays available."""
    shop = any_shop
    dists = [await _distributor(shop, clock, n) for n in range(1, 5)]  # 12.00 available each
    for n, dist in enumerate(dists, start=1):  # and 12.00 more each, pending
        friend = await buyer(shop, f"8{n:03d}3")
        await in_write(
            shop,
            lambda uow, f=friend, d=dist: uow.repo.conn.execute(
                update(t.users).where(t.users.c.id == f).values(referrer_id=d)
            ),
        )
        order = await shop.checkout.checkout(friend, await stocked(shop, 1, price=12_000), 1, USD)
        await pay(shop, order, charge=f"more-{n}")
    clock.advance(days=7)
    requests = [shop.payouts.request(d, USD, "Alipay 1380000", key=f"k{d}") for d in dists]
    done = await asyncio.gather(*requests[:2], shop.ledger.settle(), *requests[2:])
    assert done[2] == len(dists)
    for dist, made in zip(dists, [*done[:2], *done[3:]], strict=True):
        assert isinstance(made, Requested) and made.payout.amount in (1200, 2400)
        assert await _balances(shop, dist) == {
            "available": 2400 - made.payout.amount,
            "withdrawing": made.payout.amount,
            "paid_out": 0,
            "spent": 0,
        }
    await _clean(shop)


async def test_a_request_and_a_balance_payment_at_once_never_overdraw(
    any_shop: Services, clock: FrozenClock
) -> None:
    """A payment with the balance (here: a posting made under ``locked_balance``, as the balance-payment
    path does) holds the account while the request comes in: the request waits, then sees nothing left."""
    shop = any_shop
    dist = await _distributor(shop, clock, 1)
    locked, release = threading.Event(), threading.Event()

    def spend(uow: UnitOfWork) -> int:
        r = uow.repo.ledger
        have = r.locked_balance(dist, AccountKind.AVAILABLE, USD, clock.now())
        legs = [(dist, AccountKind.AVAILABLE, -have, USD), (dist, AccountKind.SPENT, have, USD)]
        post(uow, "test-spend", "balance_payment", legs, clock.now())
        locked.set()
        assert release.wait(10)
        return have

    spending = asyncio.ensure_future(in_write(shop, spend))
    assert await asyncio.to_thread(locked.wait, 10)
    requesting = asyncio.ensure_future(shop.payouts.request(dist, USD, "Alipay 1380000", key="k1"))
    await asyncio.sleep(0.2)  # lets the request reach the lock (it would pass it if there were none)
    release.set()
    assert await spending == 1200
    with pytest.raises(PayoutBelowMinimum):
        await requesting
    assert await _balances(shop, dist) == {"available": 0, "withdrawing": 0, "paid_out": 0, "spent": 1200}
    assert await _requests(shop) == 0
    await _clean(shop)


async def test_a_rejected_request_gives_the_money_back_and_tells_the_distributor_why(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    dist = await _distributor(shop, clock, 1)
    p = (await shop.payouts.request(dist, USD, "Alipay 1380000", key="k1")).payout
    rejected = await shop.payouts.reject(p.id, " wrong\u202e account ", actor="telegram:7")
    assert (rejected.status, rejected.reason, rejected.decided_by) == (
        PayoutStatus.REJECTED,
        "wrong account",
        "telegram:7",
    )
    assert await _balances(shop, dist) == {"available": 1200, "withdrawing": 0, "paid_out": 0, "spent": 0}
    rows = [
        (uid, kind, payload) for uid, kind, payload in await outbox_rows(shop) if kind.startswith("payout")
    ]
    assert rows == [
        (
            dist,
            "payout_rejected",
            {"payout_id": p.id, "amount": 1200, "currency": USD, "reason": "wrong account"},
        )
    ]
    for decide in (
        shop.payouts.reject(p.id, "again", actor="telegram:8"),
        shop.payouts.approve(p.id, actor="telegram:8"),
        shop.payouts.mark_paid(p.id, "TX-1", actor="telegram:8"),
    ):
        with pytest.raises(PayoutAlreadyDecided):
            await decide
    assert await _balances(shop, dist) == {"available": 1200, "withdrawing": 0, "paid_out": 0, "spent": 0}
    await _clean(shop)
    # the money can be asked for again
    again = await shop.payouts.request(dist, USD, "Alipay 1380001", key="k2")
    assert again.payout.amount == 1200 and again.payout.id != p.id
    await _clean(shop)


async def test_an_approved_request_marked_paid_moves_the_money_to_paid_out(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    dist = await _distributor(shop, clock, 1)
    p = (await shop.payouts.request(dist, USD, "Alipay 1380000", key="k1")).payout
    with pytest.raises(PayoutAlreadyDecided):  # only an approved request is marked paid
        await shop.payouts.mark_paid(p.id, "TX-1", actor="telegram:7")
    approved = await shop.payouts.approve(p.id, actor="telegram:7")
    assert approved.status is PayoutStatus.APPROVED
    assert await _balances(shop, dist) == {"available": 0, "withdrawing": 1200, "paid_out": 0, "spent": 0}
    await _clean(shop)
    with pytest.raises(PayoutTextInvalid):
        await shop.payouts.mark_paid(p.id, " \u200b ", actor="telegram:7")
    paid = await shop.payouts.mark_paid(p.id, "TX-2026-0001", actor="telegram:8")
    assert (paid.status, paid.reference, paid.paid_by) == (PayoutStatus.PAID, "TX-2026-0001", "telegram:8")
    assert paid.paid_at == clock.now()
    assert await _balances(shop, dist) == {"available": 0, "withdrawing": 0, "paid_out": 1200, "spent": 0}
    kinds = [kind for _uid, kind, _p in await outbox_rows(shop)]
    assert kinds.count("payout_paid") == 1
    with pytest.raises(PayoutAlreadyDecided):
        await shop.payouts.reject(p.id, "too late", actor="telegram:7")
    with pytest.raises(PayoutNotFound):
        await shop.payouts.approve(p.id + 100, actor="telegram:7")
    actions = await in_read(
        shop,
        lambda uow: [
            r[0]
            for r in uow.repo.conn.execute(
                select(t.audit_log.c.action, t.audit_log.c.detail)
                .where(t.audit_log.c.action.like("payout%"))
                .order_by(t.audit_log.c.id)
            ).all()
        ],
    )
    assert actions == ["payout_requested", "payout_approved", "payout_paid"]
    await _clean(shop)


async def test_the_audit_trail_never_holds_the_payout_details(any_shop: Services, clock: FrozenClock) -> None:
    shop = any_shop
    dist = await _distributor(shop, clock, 1)
    p = (await shop.payouts.request(dist, USD, "IBAN DE89 3704 0044 0532 0130 00", key="k1")).payout
    await shop.payouts.approve(p.id, actor="telegram:7")
    await shop.payouts.mark_paid(p.id, "TX-1", actor="telegram:7")
    details = await in_read(
        shop, lambda uow: [str(r[0]) for r in uow.repo.conn.execute(select(t.audit_log.c.detail)).all()]
    )
    assert details and not any("DE89" in d for d in details)


async def test_a_request_a_refund_took_commission_back_from_is_not_approved_and_rejecting_it_nets_that(
    any_shop: Services, clock: FrozenClock
) -> None:
    """The referral's order is refunded after the distributor asked for their 12.00: its commission is
    clawed back while the money is still the shop's, being withdrawn. Approving would pay out commission
    the shop took back: refused, and the queue says why. Rejecting it nets the clawback (available back
    to 0). Once approved (the admin may have paid already), marking it paid is never refused; the queue
    shows what the distributor owes."""
    shop = any_shop
    dist = await _distributor(shop, clock, 1)
    p = (await shop.payouts.request(dist, USD, "Alipay 1380000", key="k1")).payout
    friends_order = (await payment_row(shop, "ch-1")).order_ref
    await shop.refunds.request_refund(friends_order, actor="telegram:7")
    assert await _balances(shop, dist) == {"available": -1200, "withdrawing": 1200, "paid_out": 0, "spent": 0}
    assert (await shop.payouts.line(p.id)).available == -1200
    assert [line.available for line in (await shop.payouts.queue()).lines] == [-1200]
    with pytest.raises(PayoutUncovered) as refused:
        await shop.payouts.approve(p.id, actor="telegram:7")
    assert refused.value.params == {"payout_id": p.id, "owed": 1200, "currency": USD}
    assert (await shop.payouts.line(p.id)).payout.status is PayoutStatus.REQUESTED
    await shop.payouts.reject(p.id, "a refund took the commission back", actor="telegram:7")
    assert await _balances(shop, dist) == {"available": 0, "withdrawing": 0, "paid_out": 0, "spent": 0}
    await _clean(shop)

    other = await _distributor(shop, clock, 2)
    q = (await shop.payouts.request(other, USD, "Alipay 1390000", key="k2")).payout
    await shop.payouts.approve(q.id, actor="telegram:7")  # and paid outside the chat
    await shop.refunds.request_refund((await payment_row(shop, "ch-2")).order_ref, actor="telegram:7")
    assert (await shop.payouts.line(q.id)).available == -1200
    await shop.payouts.mark_paid(q.id, "TX-1", actor="telegram:7")
    owed = {"available": -1200, "withdrawing": 0, "paid_out": 1200, "spent": 0}
    assert await _balances(shop, other) == owed  # netted against their later commissions
    await _clean(shop)


async def test_two_admins_deciding_at_once_make_one_decision(any_shop: Services, clock: FrozenClock) -> None:
    shop = any_shop
    dist = await _distributor(shop, clock, 1)
    p = (await shop.payouts.request(dist, USD, "Alipay 1380000", key="k1")).payout
    approvals = await asyncio.gather(
        shop.payouts.approve(p.id, actor="telegram:7"),
        shop.payouts.approve(p.id, actor="telegram:8"),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in approvals) == ["Payout", "PayoutAlreadyDecided"], approvals
    decisions = await asyncio.gather(
        shop.payouts.mark_paid(p.id, "TX-1", actor="telegram:7"),
        shop.payouts.reject(p.id, "no", actor="telegram:8"),
        shop.payouts.mark_paid(p.id, "TX-2", actor="telegram:9"),
        return_exceptions=True,
    )
    won = [r for r in decisions if not isinstance(r, PayoutAlreadyDecided)]
    assert len(won) == 1, decisions
    balances = await _balances(shop, dist)
    if won[0].status is PayoutStatus.PAID:  # type: ignore[union-attr]
        assert balances == {"available": 0, "withdrawing": 0, "paid_out": 1200, "spent": 0}
    else:
        assert balances == {"available": 1200, "withdrawing": 0, "paid_out": 0, "spent": 0}
    assert len([k for _u, k, _p in await outbox_rows(shop) if k.startswith("payout")]) == 1
    await _clean(shop)


async def test_the_queue_lists_open_requests_oldest_first_a_page_at_a_time(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    dists = [await _distributor(shop, clock, n) for n in range(1, 5)]
    ids = [(await shop.payouts.request(d, USD, f"Alipay {d}", key=f"k{d}")).payout.id for d in dists]
    await shop.payouts.approve(ids[1], actor="telegram:7")
    await shop.payouts.reject(ids[2], "no", actor="telegram:7")
    first = await shop.payouts.queue(0, page_size=2)
    assert (
        [line.payout.id for line in first.lines] == [ids[0], ids[1]] and first.total == 3 and first.has_more
    )
    second = await shop.payouts.queue(1, page_size=2)
    assert [line.payout.id for line in second.lines] == [ids[3]] and not second.has_more
    line = first.lines[1]
    assert (line.payout.status, line.channel, line.external_id) == (
        PayoutStatus.APPROVED,
        "telegram",
        "80021",
    )
    assert [p.id for p in await shop.payouts.mine(dists[2])] == [ids[2]]
    await _clean(shop)


async def test_empty_or_oversized_details_are_refused_and_nothing_moves(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    dist = await _distributor(shop, clock, 1)
    for details in ("", "   ", "\u200b\u200d\u2066", "\x00\x07", "x" * 201):
        with pytest.raises(PayoutTextInvalid):
            await shop.payouts.request(dist, USD, details, key="k1")
    assert await _requests(shop) == 0
    assert await _balance(shop, dist, AccountKind.AVAILABLE) == 1200
