"""What the tests of the admins' jobs share: a shop with owners, its staff, and the outbox as
(who, kind, fields) triples."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select

from core import tables as t
from core.clock import Clock
from core.context import Context, ShopConfig
from core.db import Database
from core.ledger import Leg, post
from core.models import AccountKind
from core.roles import Role
from core.services import Services
from core.vault import Vault
from tests.conftest import in_write, query

OWNER = "100"  # ADMIN_IDS
STAFF_ADMIN, OPERATOR = "200", "300"
CONFIG = ShopConfig(currency="USD", owner_ids=(OWNER,), payout_minimum=500)


def owned(db: Database, vault: Vault, clock: Clock, **config: Any) -> Services:
    """The shop's services with an owner (``OWNER``) and ``config`` over ``CONFIG``."""
    return Services(Context(db=db, vault=vault, config=replace(CONFIG, **config), clock=clock))


async def add_staff(shop: Services, *, operator_products: tuple[int, ...] = ()) -> None:
    """An admin (``STAFF_ADMIN``) and an operator (``OPERATOR``, scoped to ``operator_products``)."""
    await shop.staff.put("telegram", STAFF_ADMIN, Role.ADMIN, actor="cli", owners=[OWNER])
    await shop.staff.put(
        "telegram", OPERATOR, Role.OPERATOR, actor="cli", owners=[OWNER], products=operator_products
    )


async def sent(shop: Services, kind: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """Every outbox row (of ``kind``), oldest first: (the recipient's external id, kind, fields)."""
    o, u = t.outbox, t.users
    q = select(u.c.external_id, o.c.kind, o.c.payload).join_from(o, u, u.c.id == o.c.user_id).order_by(o.c.id)
    rows = [(r[0], r[1], dict(r[2])) for r in await query(shop, q)]
    return [r for r in rows if kind is None or r[1] == kind]


async def recipients(shop: Services, kind: str) -> list[str]:
    return sorted(who for who, _, _ in await sent(shop, kind))


async def credit(shop: Services, user_id: int, amount: int, currency: str = "USD", key: str = "") -> None:
    """Settled commission of ``amount`` in the user's available balance (a posting straight to the ledger:
    how it got there is the ledger's tests' business)."""
    legs: list[Leg] = [
        (None, AccountKind.COMMISSION_EXPENSE, -amount, currency),
        (user_id, AccountKind.AVAILABLE, amount, currency),
    ]
    now, key = shop.ctx.clock.now(), key or f"test:{user_id}:{currency}:{amount}"
    await in_write(shop, lambda uow: post(uow, key, "test", legs, now))
