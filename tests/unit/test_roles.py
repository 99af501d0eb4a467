"""Roles and staff: what each role may do, an operator's scope, and the staff directory every process
reads (owners are never stored; changes are audited and seen by other processes within the poll)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core import tables as t
from core.context import Context, UnitOfWork
from core.errors import InvalidInput, OwnerIsNotStaff, ProductNotFound
from core.roles import Grant, Power, Role
from core.services import Services
from core.services.catalog import ProductDraft
from core.services.staff import StaffService

OWNERS = ["1"]


def test_an_owner_may_do_everything() -> None:
    assert Grant(Role.OWNER).powers() == frozenset(Power)


def test_an_admin_may_do_everything_but_staff_key_export_and_the_audit_trail() -> None:
    admin = Grant(Role.ADMIN)
    assert {p for p in Power if not admin.may(p)} == {Power.STAFF, Power.EXPORT, Power.AUDIT}


def test_an_operator_handles_goods_and_orders_never_money_or_people() -> None:
    assert Grant(Role.OPERATOR).powers() == {Power.STOCK, Power.ORDERS}


def test_a_scoped_operator_reaches_only_their_products_and_their_categories_products() -> None:
    op = Grant(Role.OPERATOR, products=frozenset({5}), categories=frozenset({2}))
    assert op.covers(5, None) and op.covers(9, 2)
    assert not op.covers(6, None) and not op.covers(6, 3)
    assert Grant(Role.OPERATOR).covers(6, 3)  # no scope: the whole shop
    assert Grant(Role.ADMIN, products=frozenset({5})).covers(6, None)  # only operators are scoped


async def test_owners_are_never_staff_and_only_operators_have_a_scope(shop: Services) -> None:
    with pytest.raises(OwnerIsNotStaff):
        await shop.staff.put("telegram", "1", Role.ADMIN, actor="telegram:1", owners=OWNERS)
    with pytest.raises(InvalidInput):
        await shop.staff.put("telegram", "7", Role.OWNER, actor="telegram:1", owners=OWNERS)
    with pytest.raises(InvalidInput):
        await shop.staff.put("telegram", "7", Role.ADMIN, actor="telegram:1", owners=OWNERS, products=[1])
    with pytest.raises(ProductNotFound):
        await shop.staff.put("telegram", "7", Role.OPERATOR, actor="telegram:1", owners=OWNERS, products=[99])
    assert await shop.staff.members() == []


async def test_staff_changes_are_audited_and_reach_another_process_within_its_poll(shop: Services) -> None:
    pid = await shop.catalog.add_product(ProductDraft(name="Netflix", price=100, price_stars=5))
    ctx = shop.ctx
    elsewhere = StaffService(Context(ctx.db, ctx.vault, ctx.config, ctx.clock), poll=3600)
    assert await elsewhere.grant_for("telegram", "7", owner=False) is None

    member = await shop.staff.put(
        "telegram", "7", Role.OPERATOR, actor="telegram:1", owners=OWNERS, products=[pid]
    )
    assert member.grant == Grant(Role.OPERATOR, products=frozenset({pid}))
    assert await shop.staff.grant_for("telegram", "7", owner=False) == member.grant
    assert await elsewhere.grant_for("telegram", "7", owner=False) is None  # its poll has not come yet
    elsewhere.poll = 0
    assert await elsewhere.grant_for("telegram", "7", owner=False) == member.grant

    assert await shop.staff.remove("telegram", "7", actor="telegram:1")
    assert not await shop.staff.remove("telegram", "7", actor="telegram:1")
    assert await elsewhere.grant_for("telegram", "7", owner=False) is None
    assert await elsewhere.grant_for("telegram", "1", owner=True) == Grant(Role.OWNER)

    def actions(uow: UnitOfWork) -> list[tuple[str, str]]:
        a = t.audit_log
        q = select(a.c.actor, a.c.action).where(a.c.action.like("staff_%")).order_by(a.c.id)
        return [(r[0], r[1]) for r in uow.repo.conn.execute(q)]

    assert await ctx.read(actions) == [("telegram:1", "staff_set"), ("telegram:1", "staff_removed")]
