"""Random sequences of everything that can happen to orders, with the invariants checked after each step."""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import select

from core import tables as t
from core.clock import FrozenClock
from core.context import STARS, Context, ShopConfig
from core.db import Database
from core.errors import ShopError
from core.models import OrderStatus, PaymentStatus
from core.services import Services
from core.services.catalog import ProductDraft
from core.uow import UnitOfWork
from core.vault import Vault, new_key_spec
from tests.conftest import create_schema, in_read, query

STOCK = 4


def _snapshot(uow: UnitOfWork) -> tuple[Any, ...]:
    """Keys, orders, payments and the outbox's size, in one read transaction."""
    c = uow.conn
    keys = c.execute(select(t.keys.c.id, t.keys.c.status, t.keys.c.order_id).order_by(t.keys.c.id)).all()
    orders = c.execute(select(t.orders.c.id, t.orders.c.status).order_by(t.orders.c.id)).all()
    pays = c.execute(select(t.payments.c.charge_id, t.payments.c.status).order_by(t.payments.c.id)).all()
    outbox = c.execute(select(t.outbox.c.id)).all()
    return (tuple(keys), tuple(orders), tuple(pays), len(outbox))


class OrderLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="keyshop-sm-"))
        self.clock = FrozenClock()
        self.db = Database(f"sqlite:///{self.dir / 'sm.db'}")
        self.shop = Services(Context(self.db, Vault.from_spec(new_key_spec("k")), ShopConfig(), self.clock))
        self.orders: list[Any] = []  # Order objects as first created (ref, amount, user)
        self.charges: list[tuple[str, Any]] = []  # (charge id, order)
        self.n = 0
        self.run(self._setup())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def _setup(self) -> None:
        await create_schema(self.db)
        self.pid = await self.shop.catalog.add_product(
            ProductDraft(name="P", price=100, price_stars=7, max_qty=3, user_limit=6, user_limit_hours=1)
        )
        data = "".join(f"K{i}\n" for i in range(STOCK)).encode()
        await self.shop.stock.import_keys(self.pid, io.BytesIO(data))
        self.users = [(await self.shop.users.ensure("telegram", str(i))).id for i in range(3)]

    def teardown(self) -> None:
        self.run(self.db.dispose())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    async def snapshot(self) -> tuple[Any, ...]:
        return await in_read(self.shop, _snapshot)

    def charge(self) -> str:
        self.n += 1
        return f"ch{self.n}"

    # -------------------------------------------------------------- rules

    @rule(user=st.integers(0, 2), qty=st.integers(0, 4))
    def checkout(self, user: int, qty: int) -> None:
        with contextlib.suppress(ShopError):
            self.orders.append(self.run(self.shop.checkout.checkout(self.users[user], self.pid, qty, STARS)))

    @precondition(lambda self: self.orders)
    @rule(i=st.integers(0, 50))
    def pay(self, i: int) -> None:
        order = self.orders[i % len(self.orders)]
        ch = self.charge()
        self.run(self.shop.payments.confirm_payment("telegram", ch, order.ref, order.amount, STARS))
        self.charges.append((ch, order))

    @precondition(lambda self: self.charges)
    @rule(i=st.integers(0, 50))
    def replay_payment(self, i: int) -> None:
        ch, order = self.charges[i % len(self.charges)]
        before = self.run(self.snapshot())
        res = self.run(self.shop.payments.confirm_payment("telegram", ch, order.ref, order.amount, STARS))
        assert res.replay
        assert self.run(self.snapshot()) == before

    @precondition(lambda self: self.orders)
    @rule(i=st.integers(0, 50), delta=st.sampled_from([-1, 1, 1000]))
    def pay_wrong_amount(self, i: int, delta: int) -> None:
        order = self.orders[i % len(self.orders)]
        before = self.run(self.snapshot())
        res = self.run(
            self.shop.payments.confirm_payment(
                "telegram", self.charge(), order.ref, order.amount + delta, STARS
            )
        )
        assert res.outcome is PaymentStatus.REJECTED
        after = self.run(self.snapshot())
        assert after[0] == before[0] and after[1] == before[1]  # keys and orders untouched

    @rule(minutes=st.sampled_from([1, 10, 16]))
    def time_passes_and_sweeper_runs(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)
        self.run(self.shop.orders.expire_due())

    @precondition(lambda self: self.orders)
    @rule(i=st.integers(0, 50))
    def cancel(self, i: int) -> None:
        order = self.orders[i % len(self.orders)]
        with contextlib.suppress(ShopError):
            self.run(self.shop.orders.cancel(order.ref, user_id=order.user_id, actor="user"))

    @precondition(lambda self: self.orders)
    @rule(i=st.integers(0, 50))
    def reveal(self, i: int) -> None:
        order = self.orders[i % len(self.orders)]
        try:
            got = self.run(
                self.shop.orders.reveal(order.ref, user_id=order.user_id, actor="user", reason="t")
            )
        except ShopError:
            return
        assert len(got.keys) == order.quantity

    @precondition(lambda self: self.orders)
    @rule(i=st.integers(0, 50))
    def refund(self, i: int) -> None:
        order = self.orders[i % len(self.orders)]
        with contextlib.suppress(ShopError):
            self.run(self.shop.refunds.request_refund(order.ref, actor="admin"))
        for owed in self.run(self.shop.refunds.refunds_due(order.ref)):
            self.run(self.shop.refunds.complete_refund(owed.provider, owed.charge_id, actor="admin"))

    # -------------------------------------------------------------- invariants

    @invariant()
    def keys_orders_and_payments_agree(self) -> None:
        keys, orders, pays, _ = self.run(self.snapshot())
        status_of = dict(orders)
        assert len(keys) == STOCK  # stock is conserved
        held: Counter[tuple[int, str]] = Counter()
        for _, kstatus, oid in keys:
            if kstatus == "available":
                assert oid is None
            else:
                assert oid is not None
                held[(oid, kstatus)] += 1

        for o in self.run(query(self.shop, select(t.orders))):
            reserved, sold, void = held[(o.id, "reserved")], held[(o.id, "sold")], held[(o.id, "void")]
            if o.status == OrderStatus.PENDING:
                assert (reserved, sold, void) == (o.quantity, 0, 0)
            elif o.status == OrderStatus.DELIVERED:
                assert (reserved, sold, void) == (0, o.quantity, 0)  # exactly the keys it paid for
            elif o.status in (OrderStatus.REFUND_DUE, OrderStatus.REFUNDED):
                assert reserved == sold == 0 and void in (0, o.quantity)
                assert (void == o.quantity) == (o.revealed_at is not None and o.delivered_at is not None)
            else:
                assert reserved == sold == void == 0
        accepted = Counter(oid for oid, st_ in self._payments() if st_ == "accepted")
        for oid, n in accepted.items():
            assert n == 1, f"order {oid} has {n} accepted payments"
            assert status_of[oid] in (OrderStatus.DELIVERED, OrderStatus.PAID)
        assert len({c for c, _ in pays}) == len(pays)

    def _payments(self) -> list[tuple[int, str]]:
        rows = self.run(query(self.shop, select(t.payments.c.order_id, t.payments.c.status)))
        return [(r[0], r[1]) for r in rows]


OrderLifecycle.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOrderLifecycle = OrderLifecycle.TestCase
