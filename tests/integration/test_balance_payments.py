"""Paying with the shop balance, on both databases: the available commission pays an order through the one
payment confirmation (delivered, commission to the payer's own referrer, the spending posted in the same
transaction); refusals change nothing (a balance never pays an order in another currency); a replay spends
nothing; a refund returns the money to the balance, once however many refunds race;
concurrent payments never spend the same money; a Stars payment racing a balance payment for one order
leaves one of them paid and the other refused or owed back. The ledger checks clean after every step."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from core import tables as t
from core.clock import FrozenClock
from core.context import UnitOfWork
from core.errors import InsufficientBalance, InvalidOrderState, NotOrderOwner, ReservationExpired
from core.messages import BalanceReturned, KeysDelivered, RefundDue
from core.models import STARS, AccountKind, CommissionStatus, Order, OrderStatus, PaymentStatus
from core.services import Services
from tests.conftest import buyer, in_read, outbox_rows, pay, refer, stocked

EARNED = 1000  # 10 % of the referred buyer's 100.00 USD order: the distributor's available balance


async def _distributor(
    shop: Services, clock: FrozenClock, name: str, *, currency: str = "USD", referrer: int | None = None
) -> int:
    """A distributor whose referred friend bought for 100.00 USD (or 10,000 Stars), settled: ``EARNED``
    (1,000 Stars) available."""
    dist = await buyer(shop, f"d-{name}")
    if referrer is not None:
        await refer(shop, dist, referrer)
    friend = await buyer(shop, f"f-{name}")
    await refer(shop, friend, dist)
    pid = await stocked(shop, 1, price=10_000, price_stars=10_000, max_qty=1)
    order = await shop.checkout.checkout(friend, pid, 1, currency)
    await pay(shop, order, charge=f"friend-{name}")
    clock.advance(days=7)
    await shop.ledger.settle()
    assert await _balance(shop, dist, AccountKind.AVAILABLE, currency) == EARNED
    return dist


async def _order(shop: Services, uid: int, price: int, *, currency: str = "USD") -> Order:
    pid = await stocked(shop, 2, price=price, price_stars=price)
    return await shop.checkout.checkout(uid, pid, 1, currency)


async def _balance(shop: Services, owner: int | None, kind: AccountKind, currency: str = "USD") -> int:
    return sum(
        b.amount for b in await shop.ledger.balances(owner) if b.kind is kind and b.currency == currency
    )


async def _postings(shop: Services, prefix: str) -> int:
    def count(uow: UnitOfWork) -> int:
        p = t.ledger_postings
        q = select(func.count()).select_from(p).where(p.c.key.startswith(prefix))
        return int(uow.repo.conn.execute(q).scalar_one())

    return await in_read(shop, count)


async def _clean(shop: Services) -> None:
    assert await shop.ledger.check() == []


async def test_the_balance_pays_an_order_which_is_delivered_and_earns_the_payers_referrer_commission(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    top = await buyer(shop, "top")
    dist = await _distributor(shop, clock, "a", referrer=top)
    await _clean(shop)
    order = await _order(shop, dist, 600)
    assert (await shop.balance.quote(order.ref, dist)).available == EARNED

    result = await shop.balance.pay(order.ref, dist)
    assert result.outcome is PaymentStatus.ACCEPTED and not result.replay
    assert result.order is not None and result.order.status is OrderStatus.DELIVERED
    assert await _balance(shop, dist, AccountKind.AVAILABLE) == EARNED - 600
    assert await _balance(shop, dist, AccountKind.SPENT) == 600
    payment = await in_read(shop, lambda uow: uow.repo.payments.get("balance", f"balance:{order.ref}"))
    assert payment is not None and payment.status == PaymentStatus.ACCEPTED and payment.payer_id == dist
    assert (dist, KeysDelivered.KIND, {"order_ref": order.ref}) in await outbox_rows(shop)
    # It counts as paid: the payer's own referrer earns on it (the payer never does, on their own order).
    cs = await shop.ledger.commissions(order.id)
    assert [(c.level, c.beneficiary_id, c.amount) for c in cs] == [(1, top, 60)]
    assert (await shop.balance.quote(order.ref, dist)).paid
    await _clean(shop)


async def test_a_stars_balance_pays_a_stars_order(any_shop: Services, clock: FrozenClock) -> None:
    shop = any_shop
    dist = await _distributor(shop, clock, "s", currency=STARS)
    order = await _order(shop, dist, 700, currency=STARS)
    assert (await shop.balance.pay(order.ref, dist)).outcome is PaymentStatus.ACCEPTED
    assert await _balance(shop, dist, AccountKind.AVAILABLE, STARS) == EARNED - 700
    assert await _balance(shop, dist, AccountKind.AVAILABLE, "USD") == 0
    await _clean(shop)


async def test_refusals_change_nothing(any_shop: Services, clock: FrozenClock) -> None:
    shop = any_shop
    dist = await _distributor(shop, clock, "r")
    other = await buyer(shop, "other")
    dear = await _order(shop, dist, EARNED + 1)  # short by one cent
    with pytest.raises(InsufficientBalance):
        await shop.balance.quote(dear.ref, dist)
    with pytest.raises(InsufficientBalance):
        await shop.balance.pay(dear.ref, dist)
    cheap = await _order(shop, dist, 100)
    with pytest.raises(NotOrderOwner):
        await shop.balance.pay(cheap.ref, other)  # someone else's order (their own balance is 0 anyway)
    theirs = await _order(shop, other, 100)
    with pytest.raises(NotOrderOwner):
        await shop.balance.pay(theirs.ref, dist)  # the distributor's balance never pays another's order
    await pay(shop, cheap, charge="stars-first")  # paid by Stars: one provider per order
    with pytest.raises(InvalidOrderState):
        await shop.balance.pay(cheap.ref, dist)
    late = await _order(shop, dist, 100)
    clock.advance(minutes=16)  # the reservation ran out (not yet swept)
    with pytest.raises(ReservationExpired):
        await shop.balance.pay(late.ref, dist)

    assert await _postings(shop, "balance-") == 0
    assert await _balance(shop, dist, AccountKind.AVAILABLE) == EARNED
    assert (await shop.orders.get(dear.ref)).status is OrderStatus.PENDING
    assert (await shop.orders.get(theirs.ref)).status is OrderStatus.PENDING
    assert (await shop.orders.get(late.ref)).status is OrderStatus.PENDING
    providers = await in_read(shop, lambda uow: uow.repo.conn.execute(select(t.payments.c.provider)).all())
    assert "balance" not in {p[0] for p in providers}
    await _clean(shop)


async def test_a_replayed_or_double_tapped_payment_spends_once(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    dist = await _distributor(shop, clock, "x")
    order = await _order(shop, dist, 300)
    taps = await asyncio.gather(*(shop.balance.pay(order.ref, dist) for _ in range(3)))
    assert sorted(r.replay for r in taps) == [False, True, True]
    assert all(r.outcome is PaymentStatus.ACCEPTED for r in taps)
    again = await shop.balance.pay(order.ref, dist)
    assert again.replay and again.outcome is PaymentStatus.ACCEPTED
    assert await _postings(shop, "balance-payment:") == 1
    assert await _balance(shop, dist, AccountKind.AVAILABLE) == EARNED - 300
    kinds = [k for _, k, _ in await outbox_rows(shop)]
    assert kinds.count(KeysDelivered.KIND) == 2  # the friend's order and this one, once
    await _clean(shop)


async def test_a_refund_returns_the_payment_to_the_balance_at_once(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    top = await buyer(shop, "top")
    dist = await _distributor(shop, clock, "f", referrer=top)
    order = await _order(shop, dist, 600)
    await shop.balance.pay(order.ref, dist)
    await _clean(shop)

    refunded = await shop.refunds.request_refund(order.ref, actor="telegram:7")
    # Neither Telegram nor an admin pays it back: it is back in the balance in the refund's transaction.
    assert refunded.status is OrderStatus.REFUND_DUE  # as the refund left it; then its reactions closed it
    assert (await shop.orders.get(order.ref)).status is OrderStatus.REFUNDED
    assert await _balance(shop, dist, AccountKind.AVAILABLE) == EARNED
    assert await _balance(shop, dist, AccountKind.SPENT) == 0
    assert await shop.refunds.refunds_due(order.ref) == []
    payment = await in_read(shop, lambda uow: uow.repo.payments.get("balance", f"balance:{order.ref}"))
    assert payment is not None and payment.status == PaymentStatus.REFUNDED
    rows = await outbox_rows(shop)
    told = [(u, p) for u, k, p in rows if k == BalanceReturned.KIND]
    assert told == [(dist, {"order_ref": order.ref, "reason": "admin", "amount": 600, "currency": "USD"})]
    assert not [k for _, k, _ in rows if k == RefundDue.KIND]  # nothing for a channel to pay back
    assert {c.status for c in await shop.ledger.commissions(order.id)} == {CommissionStatus.REVERSED}
    await _clean(shop)

    with pytest.raises(InvalidOrderState):
        await shop.refunds.request_refund(order.ref, actor="telegram:7")
    again = await shop.balance.pay(order.ref, dist)  # its one balance charge is recorded: a replay
    assert again.replay and again.outcome is PaymentStatus.REFUNDED
    with pytest.raises(InvalidOrderState):
        await shop.balance.quote(order.ref, dist)
    assert await _postings(shop, "balance-return:") == 1
    assert await _balance(shop, dist, AccountKind.AVAILABLE) == EARNED
    # The money returned is spendable again.
    second = await _order(shop, dist, EARNED)
    assert (await shop.balance.pay(second.ref, dist)).outcome is PaymentStatus.ACCEPTED
    assert await _balance(shop, dist, AccountKind.AVAILABLE) == 0
    await _clean(shop)


DISTRIBUTORS, PRICE = 4, 400  # three orders each (the most a buyer may hold unpaid) of 400: 1,200 > 1,000


async def test_concurrent_balance_payments_never_spend_the_same_money(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    dists = [await _distributor(shop, clock, f"c{i}") for i in range(DISTRIBUTORS)]
    orders = {d: [await _order(shop, d, PRICE) for _ in range(3)] for d in dists}

    async def attempt(order: Order) -> bool:
        try:
            await shop.balance.pay(order.ref, order.user_id)
        except InsufficientBalance:
            return False
        return True

    every = [o for d in dists for o in orders[d]]
    outcomes = dict(
        zip((o.ref for o in every), await asyncio.gather(*(attempt(o) for o in every)), strict=True)
    )
    for d in dists:
        paid = [o for o in orders[d] if outcomes[o.ref]]
        assert len(paid) == EARNED // PRICE  # exactly the orders the balance covers
        assert await _balance(shop, d, AccountKind.AVAILABLE) == EARNED - len(paid) * PRICE >= 0
        for o in orders[d]:
            status = (await shop.orders.get(o.ref)).status
            assert status is (OrderStatus.DELIVERED if outcomes[o.ref] else OrderStatus.PENDING)
    assert await _postings(shop, "balance-payment:") == DISTRIBUTORS * (EARNED // PRICE)
    await _clean(shop)


async def test_a_balance_payment_racing_a_stars_payment_for_one_order_leaves_one_paid(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    dist = await _distributor(shop, clock, "race", currency=STARS)
    for i in range(6):
        order = await _order(shop, dist, 100, currency=STARS)
        before = await _balance(shop, dist, AccountKind.AVAILABLE, STARS)
        stars = shop.payments.confirm_payment("telegram", f"race-{i}", order.ref, 100, STARS, payer_id=dist)
        balance_won, stars_result = await asyncio.gather(
            shop.balance.pay(order.ref, dist), stars, return_exceptions=True
        )
        assert not isinstance(stars_result, BaseException)
        assert (await shop.orders.get(order.ref)).status is OrderStatus.DELIVERED
        after = await _balance(shop, dist, AccountKind.AVAILABLE, STARS)
        if isinstance(balance_won, BaseException):  # Stars first: the balance is refused, nothing spent
            assert isinstance(balance_won, InvalidOrderState), balance_won
            assert stars_result.outcome is PaymentStatus.ACCEPTED and after == before
        else:  # the balance first: the Stars charge is a second payment, owed back to the payer
            assert balance_won.outcome is PaymentStatus.ACCEPTED
            assert stars_result.outcome is PaymentStatus.REFUND_DUE and stars_result.reason == "already_paid"
            assert after == before - 100
            assert any(
                k == RefundDue.KIND and p["charge_id"] == f"race-{i}" for _, k, p in await outbox_rows(shop)
            )
        await _clean(shop)
        clock.advance(seconds=1)


async def test_quote_refuses_what_pay_would_refuse(any_shop: Services, clock: FrozenClock) -> None:
    shop = any_shop
    dist = await _distributor(shop, clock, "q")
    order = await _order(shop, dist, 100)
    other = await buyer(shop, "q-other")
    for who, refusal in ((other, NotOrderOwner), (dist, None)):
        if refusal is None:
            assert not (await shop.balance.quote(order.ref, who)).paid
        else:
            with pytest.raises(refusal):
                await shop.balance.quote(order.ref, who)
    clock.advance(minutes=16)
    with pytest.raises(ReservationExpired):
        await shop.balance.quote(order.ref, dist)


async def test_a_balance_never_pays_an_order_in_another_currency_nor_one_with_no_balance_at_all(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    dist = await _distributor(shop, clock, "cur")  # 1,000 USD cents available, no Stars
    stars = await _order(shop, dist, 100, currency=STARS)
    for attempt in (shop.balance.quote, shop.balance.pay):
        with pytest.raises(InsufficientBalance):
            await attempt(stars.ref, dist)
    stranger = await buyer(shop, "cur-stranger")  # no ledger account of any kind
    theirs = await _order(shop, stranger, 100)
    with pytest.raises(InsufficientBalance):
        await shop.balance.pay(theirs.ref, stranger)
    assert await _balance(shop, dist, AccountKind.AVAILABLE) == EARNED
    assert {(b.kind, b.currency) for b in await shop.ledger.balances(dist)} == {
        (AccountKind.PENDING, "USD"),
        (AccountKind.AVAILABLE, "USD"),
    }  # the refused payments' reads under lock made no account that outlived them
    assert await shop.ledger.balances(stranger) == []
    assert await _postings(shop, "balance-") == 0
    for o in (stars, theirs):
        assert (await shop.orders.get(o.ref)).status is OrderStatus.PENDING
    await _clean(shop)


async def test_refunds_of_a_distributors_own_balance_paid_order_at_once_return_it_once_and_claw_back(
    any_shop: Services, clock: FrozenClock
) -> None:
    """The buyer is a distributor who paid with their own balance; their referrer's commission on the
    order has settled. Three refunds at once: one refunds, the others find it refunded; the money is back
    in the buyer's balance once, the referrer's commission is clawed back once."""
    shop = any_shop
    top = await buyer(shop, "top")
    dist = await _distributor(shop, clock, "own", referrer=top)
    order = await _order(shop, dist, 600)
    await shop.balance.pay(order.ref, dist)
    clock.advance(days=7)
    assert await shop.ledger.settle() == 1  # top's level 1 on this order
    top_before = await _balance(shop, top, AccountKind.AVAILABLE)

    refunds = await asyncio.gather(
        *(shop.refunds.request_refund(order.ref, actor=f"telegram:{i}") for i in range(3)),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in refunds) == ["InvalidOrderState", "InvalidOrderState", "Order"]
    assert (await shop.orders.get(order.ref)).status is OrderStatus.REFUNDED
    assert await _balance(shop, dist, AccountKind.AVAILABLE) == EARNED
    assert await _balance(shop, dist, AccountKind.SPENT) == 0
    assert await _postings(shop, "balance-return:") == 1
    cs = await shop.ledger.commissions(order.id)
    assert [(c.beneficiary_id, c.amount, c.status) for c in cs] == [(top, 60, CommissionStatus.CLAWED_BACK)]
    assert await _balance(shop, top, AccountKind.AVAILABLE) == top_before - 60
    assert await _postings(shop, "clawback:") == 1
    await _clean(shop)
