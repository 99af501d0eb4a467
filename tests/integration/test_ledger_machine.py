"""Random sequences of everything that moves a distributor's money — referred purchases in USD and Stars,
orders an admin marks paid (with or without commission), refunds, settlements after the holding period,
paying with the balance, withdrawal requests and an admin's approve / reject / mark paid, and the admins'
changes to the rates (a product's own, a distributor's override) and to blocking — with the ledger's rules
checked after every step: ``keyshop ledger check`` clean (every posting sums to zero per currency, every
order's commissions are what the rules said when it was delivered, whatever changed since), no account but
``available`` ever goes below zero, and ``available`` only through clawbacks (spending and withdrawing
never take more than there is); a withdrawal is approved only while no clawback left ``available`` below
zero beside it.

SQLite only: the steps run one at a time, so what they exercise is the rules, which are the same on both
databases; what differs between them (locks, SKIP LOCKED, ON CONFLICT) is raced in the integration tests
of each service on both."""

from __future__ import annotations

import asyncio
import io
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import select, update

from core import tables as t
from core.clock import FrozenClock
from core.context import STARS, Context, ShopConfig
from core.db import Database
from core.errors import (
    InsufficientBalance,
    PayoutAlreadyDecided,
    PayoutAlreadyOpen,
    PayoutBelowMinimum,
    PayoutUncovered,
)
from core.models import AccountKind, CommissionStatus, PayoutStatus
from core.roles import Grant, Role
from core.services import Services
from core.services.catalog import ProductDraft
from core.vault import Vault, new_key_spec
from tests.conftest import create_schema, in_read, in_write, pay

USD = "USD"
PRICE, PRICE_STARS = 1000, 200  # level 1 earns 100 cents or 20 Stars, level 2 50 or 10
CHEAP, CHEAP_STARS = 120, 25
ADMIN = Grant(Role.ADMIN)
# What an admin changes that decides later commissions (90 % and 60 % overrides together pay the cap).
CHANGES: list[tuple[str, Any]] = [
    ("product", None),
    ("product", (0,)),
    ("product", (2000, 1000)),
    ("product", (1500,)),
    ("rates-mid", "90"),
    ("rates-top", "0,60"),
    ("rates-mid", "0"),
    ("rates-mid", None),
    ("rates-top", None),
    ("blocked-mid", True),
    ("blocked-mid", False),
    ("blocked-top", True),
    ("blocked-top", False),
]
KINDS_NEVER_NEGATIVE = (AccountKind.PENDING, AccountKind.SPENT, AccountKind.WITHDRAWING, AccountKind.PAID_OUT)


class DistributorMoney(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="keyshop-ledger-sm-"))
        self.clock = FrozenClock()
        self.db = Database(f"sqlite:///{self.dir / 'sm.db'}")
        config = ShopConfig(currency=USD, payout_minimum=50, stars_payout_rate=3)
        self.shop = Services(Context(self.db, Vault.from_spec(new_key_spec("k")), config, self.clock))
        self.delivered: list[str] = []  # refs of delivered orders (a refund takes one out)
        self.payouts: list[int] = []
        self.n = 0
        self.run(self._setup())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def _setup(self) -> None:
        await create_schema(self.db)
        self.pid = await self.shop.catalog.add_product(
            ProductDraft(name="P", price=PRICE, price_stars=PRICE_STARS, max_qty=1)
        )
        data = "".join(f"K{i}\n" for i in range(120)).encode()
        await self.shop.stock.import_keys(self.pid, io.BytesIO(data))
        # What a distributor buys with a commission or two.
        self.cheap = await self.shop.catalog.add_product(
            ProductDraft(name="C", price=CHEAP, price_stars=CHEAP_STARS, max_qty=1)
        )
        data = "".join(f"C{i}\n" for i in range(120)).encode()
        await self.shop.stock.import_keys(self.cheap, io.BytesIO(data))
        ids = [(await self.shop.users.ensure("telegram", str(100 + i))).id for i in range(4)]
        self.top, self.mid, *self.buyers = ids
        # top refers mid; mid refers both buyers: mid earns level 1, top level 2 on their orders, and
        # top level 1 on mid's own purchases.
        for uid, referrer in [(self.mid, self.top)] + [(b, self.mid) for b in self.buyers]:
            await in_write(
                self.shop,
                lambda uow, uid=uid, referrer=referrer: uow.repo.conn.execute(
                    update(t.users).where(t.users.c.id == uid).values(referrer_id=referrer)
                ),
            )
        self.distributors = [self.top, self.mid]

    def teardown(self) -> None:
        self.run(self.db.dispose())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _next(self, what: str) -> str:
        self.n += 1
        return f"{what}-{self.n}"

    async def _available(self, uid: int, currency: str) -> int:
        return await self.shop.balance.available(uid, currency)

    # -------------------------------------------------------------- rules

    @initialize()
    def distributors_start_with_settled_commission(self) -> None:
        """Referred purchases in both currencies, settled: withdrawing and spending have money to move
        from the first step on."""
        for uid in self.buyers:
            for currency in (USD, STARS):
                order = self.run(self.shop.checkout.checkout(uid, self.pid, 1, currency))
                self.run(pay(self.shop, order, charge=self._next("ch")))
                self.delivered.append(order.ref)
        self.clock.advance(days=8)
        assert self.run(self.shop.ledger.settle()) == 8

    @rule(
        who=st.sampled_from(["b0", "b1", "mid"]),
        stars=st.booleans(),
        how=st.sampled_from(["charge", "charge", "marked paid", "marked paid with commission"]),
    )
    def referred_purchase(self, who: str, stars: bool, how: str) -> None:
        uid = {"b0": self.buyers[0], "b1": self.buyers[1], "mid": self.mid}[who]
        order = self.run(self.shop.checkout.checkout(uid, self.pid, 1, STARS if stars else USD))
        if how == "charge":
            self.run(pay(self.shop, order, charge=self._next("ch")))
        else:  # an admin received the money outside the chat
            earns = how == "marked paid with commission"
            desk = self.shop.order_desk
            self.run(
                desk.mark_paid(order.ref, order.amount, "cash", grant=ADMIN, actor="a", with_commission=earns)
            )
            assert earns or not self.run(self.shop.ledger.commissions(order.id))  # none unless chosen
            event(how)
        self.delivered.append(order.ref)

    @rule(change=st.sampled_from(CHANGES))
    def admin_changes_terms(self, change: tuple[str, Any]) -> None:
        """A product's own rates, a distributor's override or block: for orders delivered from now on."""
        what, value = change
        if what == "product":
            self.run(self.shop.catalog.update_product(self.pid, actor="admin", commission_rates=value))
            return
        action, who = what.split("-")
        uid = self.top if who == "top" else self.mid
        d = self.shop.distributors
        self.run(
            d.set_rates(uid, value, actor="admin")
            if action == "rates"
            else d.set_blocked(uid, value, actor="admin")
        )
        event(f"{what} {value}")

    @rule(who=st.sampled_from(["top", "mid"]), stars=st.booleans())
    def pay_with_balance(self, who: str, stars: bool) -> None:
        uid = self.top if who == "top" else self.mid
        currency = STARS if stars else USD
        before = self.run(self._available(uid, currency))
        order = self.run(self.shop.checkout.checkout(uid, self.cheap, 1, currency))
        try:
            self.run(self.shop.balance.pay(order.ref, uid))
        except InsufficientBalance:
            assert before < order.amount
            event("balance short")
            return
        event("paid with balance")
        assert before >= order.amount
        self.delivered.append(order.ref)
        # A double tap spends nothing more.
        again = self.run(self.shop.balance.pay(order.ref, uid))
        assert again.replay
        assert self.run(self._available(uid, currency)) == before - order.amount

    @precondition(lambda self: self.delivered)
    @rule(i=st.integers(0, 100))
    def refund(self, i: int) -> None:
        ref = self.delivered.pop(i % len(self.delivered))
        self.run(self.shop.refunds.request_refund(ref, actor="admin"))

    @rule(days=st.sampled_from([1, 3, 8]))
    def time_passes_and_settlement_runs(self, days: int) -> None:
        self.clock.advance(days=days)
        self.run(self.shop.ledger.settle())

    @rule(who=st.sampled_from(["top", "mid"]), stars=st.booleans())
    def request_withdrawal(self, who: str, stars: bool) -> None:
        uid = self.top if who == "top" else self.mid
        currency = STARS if stars else USD
        before = self.run(self._available(uid, currency))
        try:
            done = self.run(self.shop.payouts.request(uid, currency, "bank 123", key=self._next("wd")))
        except (PayoutBelowMinimum, PayoutAlreadyOpen):
            event("withdrawal refused")
            return
        event("withdrawal requested")
        assert done.payout.amount == before > 0
        assert self.run(self._available(uid, currency)) == 0
        self.payouts.append(done.payout.id)

    @precondition(lambda self: self.payouts)
    @rule(i=st.integers(0, 100), decision=st.sampled_from(["approve", "reject", "paid"]))
    def admin_decides(self, i: int, decision: str) -> None:
        pid = self.payouts[i % len(self.payouts)]
        p = self.shop.payouts
        try:
            if decision == "approve":
                done = self.run(p.approve(pid, actor="admin"))
                # approved only while no refund took more back since than the balance beside it held
                assert self.run(self._available(done.user_id, done.currency)) >= 0
            elif decision == "reject":
                self.run(p.reject(pid, "wrong account", actor="admin"))
            else:
                self.run(p.mark_paid(pid, "TX-1", actor="admin"))
        except PayoutAlreadyDecided:
            event("already decided")
            return
        except PayoutUncovered as e:
            line = self.run(p.line(pid))
            assert line.available < 0 and e.params["owed"] == -line.available
            assert line.payout.status is PayoutStatus.REQUESTED
            event("approval refused: a refund took the commission back")
            return
        event(f"payout {decision}")

    # -------------------------------------------------------------- invariants

    @invariant()
    def the_ledger_balances_and_no_balance_goes_below_what_the_rules_allow(self) -> None:
        assert self.run(self.shop.ledger.check()) == []
        clawed: dict[tuple[int, str], int] = defaultdict(int)
        for c in self.run(self._commissions()):
            if c.status == CommissionStatus.CLAWED_BACK.value:
                clawed[(c.beneficiary_id, c.currency)] += c.amount
        for uid in self.distributors:
            for b in self.run(self.shop.ledger.balances(uid)):
                if b.kind in KINDS_NEVER_NEGATIVE:
                    assert b.amount >= 0, b
                if b.kind is AccountKind.AVAILABLE:
                    # Only a clawback takes available below zero: never spending or withdrawing.
                    assert b.amount >= -clawed[(uid, b.currency)], b

    @invariant()
    def an_open_withdrawal_holds_exactly_what_is_being_withdrawn(self) -> None:
        open_: dict[tuple[int, str], int] = defaultdict(int)
        for row in self.run(self._payout_rows()):
            if row.status in (PayoutStatus.REQUESTED.value, PayoutStatus.APPROVED.value):
                assert (row.user_id, row.currency) not in open_  # one open request per currency
                open_[(row.user_id, row.currency)] += row.amount
        for uid in self.distributors:
            for b in self.run(self.shop.ledger.balances(uid)):
                if b.kind is AccountKind.WITHDRAWING:
                    assert b.amount == open_.get((uid, b.currency), 0)

    async def _commissions(self) -> list[Any]:
        return await in_read(self.shop, lambda uow: uow.repo.conn.execute(select(t.commissions)).all())

    async def _payout_rows(self) -> list[Any]:
        return await in_read(self.shop, lambda uow: uow.repo.conn.execute(select(t.payout_requests)).all())


DistributorMoney.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestDistributorMoney = DistributorMoney.TestCase
