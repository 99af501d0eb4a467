"""Products drafted in the admins' chat editor (core.services.drafts) and categories edited there: saved
in one transaction, once, with the shared key never kept in plain text by the conversation."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from core import tables as t
from core.errors import (
    CategoryNotFound,
    DeliveryKindChangeRefused,
    InvalidInput,
    KeyHasBidiControl,
    VaultError,
)
from core.models import STARS, DeliveryKind, KeyStatus
from core.services import Services
from core.services.drafts import new_token
from tests.conftest import buyer, draft, query


async def _audit(shop: Services, action: str) -> list[dict[str, object]]:
    a = t.audit_log
    rows = await query(shop, select(a.c.actor, a.c.detail).where(a.c.action == action).order_by(a.c.id))
    return [{"actor": r[0], **r[1]} for r in rows]


async def test_a_draft_saved_twice_is_one_product(any_shop: Services) -> None:
    token = new_token()
    first = await any_shop.drafts.create_product(draft(name="Netflix"), token=token, actor="telegram:1")
    again = await any_shop.drafts.create_product(draft(name="Netflix"), token=token, actor="telegram:1")
    assert first == (first[0], True) and again == (first[0], False)
    assert [p.name for p in await any_shop.catalog.products()] == ["Netflix"]
    other, created = await any_shop.drafts.create_product(draft(name="Netflix"), token=new_token())
    assert created and other != first[0]


async def test_a_draft_saved_twice_at_once_is_one_product(any_shop: Services) -> None:
    token = new_token()
    results = await asyncio.gather(
        *(any_shop.drafts.create_product(draft(name="Race"), token=token) for _ in range(4))
    )
    assert len({pid for pid, _ in results}) == 1 and sum(created for _, created in results) == 1
    assert len(await any_shop.catalog.products()) == 1


async def test_a_shared_key_product_is_saved_with_its_key_in_one_transaction(any_shop: Services) -> None:
    token = new_token()
    sealed, masked = any_shop.drafts.seal_key(token, "  SHARED-KEY-0001-XYZ ")
    assert "SHARED-KEY-0001-XYZ" not in sealed and masked == "SHAR••••••••-XYZ"
    pid, _ = await any_shop.drafts.create_product(
        draft(delivery_kind=DeliveryKind.SHARED), token=token, sealed_key=sealed, actor="telegram:1"
    )
    k = t.keys
    rows = await query(any_shop, select(k.c.status).where(k.c.product_id == pid))
    assert [r[0] for r in rows] == [KeyStatus.SHARED.value]
    assert [e["actor"] for e in await _audit(any_shop, "shared_key_set")] == ["telegram:1"]
    # a key for a product that is not a shared-key one adds nothing, not even the product
    bad_token = new_token()
    sealed, _ = any_shop.drafts.seal_key(bad_token, "OTHER")
    with pytest.raises(InvalidInput):
        await any_shop.drafts.create_product(draft(name="Plain"), token=bad_token, sealed_key=sealed)
    assert [p.name for p in await any_shop.catalog.products()] == ["Steam 10 USD"]


async def test_a_sealed_key_opens_only_with_its_own_draft_token(any_shop: Services) -> None:
    sealed, _ = any_shop.drafts.seal_key(new_token(), "SHARED")
    with pytest.raises(VaultError):
        await any_shop.drafts.create_product(
            draft(delivery_kind=DeliveryKind.SHARED), token=new_token(), sealed_key=sealed
        )
    with pytest.raises(InvalidInput):
        await any_shop.drafts.create_product(draft(), token="not-a-token")
    assert await any_shop.catalog.products() == []


def test_a_draft_key_is_checked_like_any_key(shop: Services) -> None:
    with pytest.raises(KeyHasBidiControl):
        shop.drafts.seal_key(new_token(), "AB\u202eCD")
    with pytest.raises(InvalidInput):
        shop.drafts.seal_key(new_token(), " \u200b ")


async def test_an_edit_with_a_new_shared_key_is_one_audited_transaction(any_shop: Services) -> None:
    pid = await any_shop.catalog.add_product(draft())
    token = new_token()
    sealed, _ = any_shop.drafts.seal_key(token, "NEW-SHARED")
    changed = await any_shop.drafts.edit_product(
        pid, {"delivery_kind": DeliveryKind.SHARED}, token=token, sealed_key=sealed, actor="telegram:1"
    )
    assert changed.delivery_kind is DeliveryKind.SHARED
    assert [e["fields"] for e in await _audit(any_shop, "product_updated")] == [["delivery_kind"]]
    assert len(await _audit(any_shop, "shared_key_set")) == 1


async def test_an_edit_changing_the_kind_under_open_orders_is_refused_whole(any_shop: Services) -> None:
    pid = await any_shop.catalog.add_product(draft(delivery_kind=DeliveryKind.MANUAL))
    o = await any_shop.checkout.checkout(await buyer(any_shop), pid, 1, STARS)
    await any_shop.payments.confirm_payment("telegram", "c", o.ref, o.amount, STARS)
    token = new_token()
    sealed, _ = any_shop.drafts.seal_key(token, "K")
    with pytest.raises(DeliveryKindChangeRefused):
        await any_shop.drafts.edit_product(
            pid, {"delivery_kind": DeliveryKind.SHARED, "name": "X"}, token=token, sealed_key=sealed
        )
    p = await any_shop.catalog.product(pid)
    assert (p.delivery_kind, p.name) == (DeliveryKind.MANUAL, "Steam 10 USD")


async def test_a_product_moved_to_a_category_that_does_not_exist_is_refused(any_shop: Services) -> None:
    pid = await any_shop.catalog.add_product(draft())
    with pytest.raises(CategoryNotFound):
        await any_shop.catalog.update_product(pid, category_id=999)
    with pytest.raises(CategoryNotFound):
        await any_shop.drafts.create_product(draft(category_id=999), token=new_token())


async def test_a_category_is_renamed_and_moved_audited(any_shop: Services) -> None:
    cid = await any_shop.catalog.add_category("Games", actor="telegram:1")
    renamed = await any_shop.catalog.update_category(
        cid, name="  Video   games ", position=3, actor="telegram:1"
    )
    assert (renamed.name, renamed.description, renamed.position) == ("Video games", "", 3)
    assert [c.name for c in await any_shop.catalog.categories()] == ["Video games"]
    assert [e["fields"] for e in await _audit(any_shop, "category_updated")] == [["name", "position"]]
    assert len(await _audit(any_shop, "category_added")) == 1
    with pytest.raises(InvalidInput):
        await any_shop.catalog.update_category(cid, name=" ")
    with pytest.raises(InvalidInput):
        await any_shop.catalog.update_category(cid, position=2**31)
    with pytest.raises(CategoryNotFound):
        await any_shop.catalog.update_category(12345, name="X")


async def test_a_category_draft_saved_twice_is_one_category(any_shop: Services) -> None:
    token = new_token()
    first = await any_shop.drafts.create_category(" Gift  cards ", token=token, actor="telegram:1")
    again = await any_shop.drafts.create_category("Gift cards", token=token, actor="telegram:1")
    assert first[1] and again == (first[0], False)
    assert [c.name for c in await any_shop.catalog.categories()] == ["Gift cards"]
