"""The back office's order lists page by keyset on both databases: each order is listed exactly once across
the pages, newest first, while new orders arrive; ◀️ goes back to the same orders; an operator's forged page
of a buyer or an import outside their scope lists nothing of it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core import tables as t
from core.errors import InvalidInput
from core.models import STARS, DeliveryKind
from core.roles import Grant, Role
from core.services import Services
from core.services.order_desk import PAGE_SIZE, OrderList
from tests.conftest import buyer, pay, stocked

OWNER = Grant(Role.OWNER)


async def _paid_manual(shop: Services, product: int, user: int, n: int, tag: str) -> list[str]:
    refs = []
    for i in range(n):
        order = await shop.checkout.checkout(user, product, 1, STARS)
        await pay(shop, order, charge=f"{tag}-{i}")
        refs.append(order.ref)
    return refs


async def _walk(
    shop: Services, first: OrderList, grant: Grant, arrive: int = 0, **arriving: int
) -> list[str]:
    """Every ref of the list, following ▶️ from ``first``; ``arrive`` new orders come in after each page."""
    seen, found = [], first
    while True:
        seen += [ln.order.ref for ln in found.lines]
        if arrive:
            await _paid_manual(shop, arriving["product"], arriving["user"], arrive, f"new{len(seen)}")
        if not found.older:
            return seen
        found = await shop.order_desk.page(
            found.kind, found.key, grant=grant, page=found.page + 1, before=found.lines[-1].order.id
        )


async def test_pages_list_every_pending_order_once_newest_first_while_new_ones_arrive(
    any_shop: Services,
) -> None:
    shop = any_shop
    manual = await stocked(shop, 0, name="Manual", delivery_kind=DeliveryKind.MANUAL)
    uid = await buyer(shop)
    refs = await _paid_manual(shop, manual, uid, 2 * PAGE_SIZE + 3, "old")
    first = await shop.order_desk.pending(grant=OWNER)
    assert (first.page, first.pages, first.newer, first.older) == (0, 3, False, True)
    assert len(first.lines) == PAGE_SIZE
    seen = await _walk(shop, first, OWNER, arrive=2, product=manual, user=uid)
    assert seen == refs[::-1]  # each once, none skipped, the new ones not slipped in
    # ◀️ from the second page: the same first page again, numbered 1
    second = await shop.order_desk.page("pending", 0, grant=OWNER, page=1, before=first.lines[-1].order.id)
    back = await shop.order_desk.page("pending", 0, grant=OWNER, page=0, after=second.lines[0].order.id)
    assert [ln.order.ref for ln in back.lines] == [ln.order.ref for ln in first.lines]
    assert back.page == 0 and back.newer and back.older  # newer: the ones that arrived meanwhile
    assert len((await shop.order_desk.pending(grant=OWNER)).lines) == PAGE_SIZE


async def test_a_buyers_pages_and_an_imports_pages_hold_only_theirs(any_shop: Services) -> None:
    shop = any_shop
    manual = await stocked(shop, 0, name="Manual", delivery_kind=DeliveryKind.MANUAL)
    ann, bo = await buyer(shop, "1001"), await buyer(shop, "1002")
    anns = await _paid_manual(shop, manual, ann, PAGE_SIZE + 2, "ann")
    await _paid_manual(shop, manual, bo, 2, "bo")
    first = await shop.order_desk.search("1001", channel="telegram", grant=OWNER)
    assert isinstance(first, OrderList) and (first.kind, first.key, first.pages) == ("buyer", ann, 2)
    assert await _walk(shop, first, OWNER) == anns[::-1]
    keyed = await stocked(shop, PAGE_SIZE + 1)
    sold = []
    for i in range(PAGE_SIZE + 1):
        sold.append(await shop.checkout.checkout(bo, keyed, 1, STARS))
        await pay(shop, sold[-1], charge=f"k{i}")
    imports = await shop.ctx.read(
        lambda uow: uow.repo.conn.execute(select(func.max(t.stock_imports.c.id))).scalar_one()
    )
    batch = await shop.order_desk.search(f"i:{imports}", channel="telegram", grant=OWNER)
    assert isinstance(batch, OrderList) and batch.kind == "import" and batch.older
    assert await _walk(shop, batch, OWNER) == [o.ref for o in sold][::-1]


async def test_a_forged_page_outside_an_operators_scope_lists_nothing_of_it(any_shop: Services) -> None:
    shop = any_shop
    theirs = await stocked(shop, 0, name="Theirs", delivery_kind=DeliveryKind.MANUAL)
    other = await stocked(shop, 0, name="Other", delivery_kind=DeliveryKind.MANUAL)
    ann = await buyer(shop)
    hidden = await _paid_manual(shop, other, ann, PAGE_SIZE + 2, "o")
    operator = Grant(Role.OPERATOR, frozenset({theirs}))
    for kind, key in (("buyer", ann), ("pending", 0)):
        for page, before, after in ((0, 0, 0), (3, 10**9, 0), (1, 0, 1)):
            found = await shop.order_desk.page(
                kind, key, grant=operator, page=page, before=before, after=after
            )
            assert found.lines == []
            assert not {ln.order.ref for ln in found.lines} & set(hidden)
    with pytest.raises(InvalidInput):
        await shop.order_desk.page("buyer", 0, grant=operator)
