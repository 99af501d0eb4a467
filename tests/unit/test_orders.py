"""Orders once placed: expiry, cancellation, revealing their keys, references and the state machine."""

from __future__ import annotations

import pytest

from core import tables as t
from core.clock import FrozenClock
from core.errors import InvalidOrderState, OrderNotFound
from core.models import STARS, KeyStatus, OrderStatus, check_transition
from core.services import Services
from tests.conftest import buyer, in_read, key_statuses, pay, stocked

# ---------------------------------------------------------------- expiry, cancellation


async def test_expiry_returns_reserved_keys_to_stock(shop: Services, clock: FrozenClock) -> None:
    pid = await stocked(shop, 3)
    o = await shop.checkout.checkout(await buyer(shop), pid, 3, STARS)
    clock.advance(minutes=14)
    assert await shop.orders.expire_due() == 0
    clock.advance(minutes=1)
    assert await shop.orders.expire_due() == 1
    assert (await shop.orders.get(o.ref)).status is OrderStatus.EXPIRED
    assert await key_statuses(shop, pid) == {"available": 3}


async def test_only_the_buyer_can_cancel_their_pending_order(shop: Services) -> None:
    pid = await stocked(shop, 2)
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 2, STARS)
    with pytest.raises(OrderNotFound):
        await shop.orders.cancel(o.ref, user_id=await buyer(shop, "stranger"), actor="x")
    await shop.orders.cancel(o.ref, user_id=uid, actor="user")
    assert await key_statuses(shop, pid) == {"available": 2}
    with pytest.raises(InvalidOrderState):
        await shop.orders.cancel(o.ref, user_id=uid, actor="user")


# ---------------------------------------------------------------- revealing


async def test_keys_are_revealed_only_to_their_buyer_and_every_reveal_is_audited(shop: Services) -> None:
    pid = await stocked(shop, 1)
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 1, STARS)
    with pytest.raises(InvalidOrderState):
        await shop.orders.reveal(o.ref, user_id=uid, actor="user", reason="early")
    await pay(shop, o)
    with pytest.raises(OrderNotFound):
        await shop.orders.reveal(o.ref, user_id=await buyer(shop, "thief"), actor="thief", reason="x")
    await shop.orders.reveal(o.ref, user_id=uid, actor="user", reason="delivery")
    await shop.orders.reveal(o.ref, user_id=None, actor="admin:7", reason="support")
    audit = await in_read(shop, lambda uow: uow.repo.audit.for_order(o.id))
    reveals = [e.detail for e in audit if e.action == "keys_revealed"]
    assert [r["reason"] for r in reveals] == ["delivery", "support"]


# ---------------------------------------------------------------- references and the state machine


async def test_order_references_are_unguessable_and_distinct(shop: Services) -> None:
    pid = await stocked(shop, 50)
    refs = {(await shop.checkout.checkout(await buyer(shop, f"b{i}"), pid, 1, STARS)).ref for i in range(50)}
    assert len(refs) == 50
    assert all(len(r) == 16 and r.isalnum() and r.isupper() for r in refs)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (OrderStatus.DELIVERED, OrderStatus.PENDING),
        (OrderStatus.REFUNDED, OrderStatus.DELIVERED),
        (OrderStatus.PENDING, OrderStatus.REFUNDED),
        (OrderStatus.EXPIRED, OrderStatus.CANCELLED),
    ],
)
def test_the_order_state_machine_forbids_backward_and_skipping_moves(
    old: OrderStatus, new: OrderStatus
) -> None:
    with pytest.raises(InvalidOrderState):
        check_transition(old, new)


def test_key_status_values_fit_their_column() -> None:
    assert max(len(s.value) for s in KeyStatus) <= t.keys.c.status.type.length  # type: ignore[attr-defined]


async def test_revealing_many_orders_together_refuses_only_the_ones_that_may_not_be_revealed(
    shop: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outbox sender reveals a round's deliveries in one transaction: an order that is not (or no
    longer) deliverable is refused alone, and every reveal is audited as if it were made by itself."""
    pid = await stocked(shop, 3)
    uid, other = await buyer(shop, "1"), await buyer(shop, "2")
    delivered = []
    for _ in range(2):
        o = await shop.checkout.checkout(uid, pid, 1, "XTR")
        await pay(shop, o, charge=f"ch-{o.ref}")
        delivered.append(o.ref)
    pending = await shop.checkout.checkout(uid, pid, 1, "XTR")
    writes: list[int] = []
    real = shop.ctx.db.run

    async def counted(job: object, *args: object) -> object:
        writes.append(1)
        return await real(job, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(shop.ctx.db, "run", counted)
    out = await shop.orders.reveal_many(
        [(delivered[0], uid), (pending.ref, uid), (delivered[1], other), (delivered[1], uid)],
        actor="outbox",
        reason="delivery",
    )
    assert len(writes) == 1
    assert isinstance(out[pending.ref], InvalidOrderState)
    shown = out[delivered[0]]
    assert not isinstance(shown, Exception) and len(shown.keys) == 1
    assert not isinstance(out[delivered[1]], Exception)  # the owner's request, after another's refusal
    for ref in delivered:
        order = await shop.orders.get(ref)
        assert order.revealed_at is not None
