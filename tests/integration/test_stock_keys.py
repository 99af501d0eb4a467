"""Staff's work on keys in stock (void by value or by import, export of unsold keys), on both databases:
only keys still in stock are touched, an operator only within their scope, only owners export, every
change and every reveal is audited, and an export confirmation is honoured once."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from sqlalchemy import select

from core import tables as t
from core.errors import (
    ExportAlreadySent,
    ExportTooLarge,
    ImportBatchNotFound,
    KeyNotInStock,
    NotPermitted,
    StockNotKept,
)
from core.models import STARS, DeliveryKind, KeyStatus
from core.roles import Grant, Role
from core.services import Services
from tests.conftest import buyer, draft, key_statuses, pay, query, stocked

OWNER = Grant(Role.OWNER)
ADMIN = Grant(Role.ADMIN)


async def _audit(shop: Services, action: str) -> list[tuple[str, int | None, dict[str, Any]]]:
    a = t.audit_log
    rows = await query(shop, select(a.c.actor, a.c.product_id, a.c.detail).where(a.c.action == action))
    return [(r[0], r[1], r[2]) for r in rows]


async def _import(shop: Services, pid: int, keys: list[str]) -> int:
    rep = await shop.stock.import_keys(pid, io.BytesIO("".join(f"{k}\n" for k in keys).encode()))
    return rep.import_id


async def _sell_one(shop: Services, pid: int, ext: str = "1001") -> None:
    uid = await buyer(shop, ext)
    order = await shop.checkout.checkout(uid, pid, 1, STARS)
    await pay(shop, order, charge=f"ch-{ext}")


async def _reserve_one(shop: Services, pid: int, ext: str = "1002") -> None:
    uid = await buyer(shop, ext)
    await shop.checkout.checkout(uid, pid, 1, STARS)


async def test_a_key_is_found_by_any_way_of_writing_it_the_shop_takes_for_the_same_key(
    any_shop: Services,
) -> None:
    pid = await stocked(any_shop, 3)  # KEY-0000..KEY-0002
    found = await any_shop.keys.find(pid, "  KEY-\u200b0001 ", grant=OWNER)
    assert found.status is KeyStatus.AVAILABLE and found.product.id == pid
    with pytest.raises(KeyNotInStock):
        await any_shop.keys.find(pid, "KEY-9999", grant=OWNER)
    other = await stocked(any_shop, 0, name="Other")
    with pytest.raises(KeyNotInStock):  # the blind index is per product
        await any_shop.keys.find(other, "KEY-0001", grant=OWNER)


async def test_voiding_a_key_takes_it_out_of_stock_for_good_and_is_audited(any_shop: Services) -> None:
    pid = await stocked(any_shop, 3)
    found = await any_shop.keys.find(pid, "KEY-0001", grant=OWNER)
    assert await any_shop.keys.void_key(pid, found.key_id, grant=OWNER, actor="telegram:1") == 1
    assert await key_statuses(any_shop, pid) == {"available": 2, "void": 1}
    assert await any_shop.keys.void_key(pid, found.key_id, grant=OWNER, actor="telegram:1") == 0  # once
    assert await _audit(any_shop, "keys_voided") == [("telegram:1", pid, {"count": 1, "key": found.key_id})]
    # a voided key is never imported again either: it is still the same key of this product
    rep = await any_shop.stock.import_keys(pid, io.BytesIO(b"KEY-0001\n"))
    assert (rep.added, rep.duplicates) == (0, 1)


async def test_a_sold_or_reserved_key_is_never_voided_by_value(any_shop: Services) -> None:
    pid = await stocked(any_shop, 2)
    await _sell_one(any_shop, pid)
    await _reserve_one(any_shop, pid)
    found = [await any_shop.keys.find(pid, key, grant=OWNER) for key in ("KEY-0000", "KEY-0001")]
    assert sorted(f.status for f in found) == [KeyStatus.RESERVED, KeyStatus.SOLD]
    for f in found:
        assert await any_shop.keys.void_key(pid, f.key_id, grant=OWNER, actor="telegram:1") == 0
    assert await key_statuses(any_shop, pid) == {"sold": 1, "reserved": 1}
    assert await _audit(any_shop, "keys_voided") == []


async def test_voiding_a_batch_voids_only_its_keys_still_in_stock(any_shop: Services) -> None:
    pid = await stocked(any_shop, 0)
    first = await _import(any_shop, pid, ["A1", "A2", "A3"])
    second = await _import(any_shop, pid, ["B1", "B2"])
    await _sell_one(any_shop, pid)  # the first import's keys are sold first
    await _reserve_one(any_shop, pid)
    batch = await any_shop.keys.batch(pid, first, grant=OWNER)
    assert (batch.available, batch.held) == (1, 2)
    assert await any_shop.keys.void_batch(pid, first, grant=OWNER, actor="telegram:1") == 1
    assert await key_statuses(any_shop, pid) == {"sold": 1, "reserved": 1, "void": 1, "available": 2}
    assert await any_shop.keys.void_batch(pid, first, grant=OWNER, actor="telegram:1") == 0
    assert (await any_shop.keys.batch(pid, second, grant=OWNER)).available == 2
    assert await _audit(any_shop, "keys_voided") == [("telegram:1", pid, {"count": 1, "import_id": first})]
    other = await stocked(any_shop, 1, name="Other")
    with pytest.raises(ImportBatchNotFound):  # an import of another product is no batch of this one
        await any_shop.keys.batch(other, first, grant=OWNER)
    with pytest.raises(ImportBatchNotFound):
        await any_shop.keys.batch(pid, 999_999, grant=OWNER)


async def test_an_operator_voids_and_imports_only_within_their_scope(any_shop: Services) -> None:
    theirs = await stocked(any_shop, 2)
    other = await stocked(any_shop, 2, name="Other")
    operator = Grant(Role.OPERATOR, products=frozenset({theirs}))
    found = await any_shop.keys.find(theirs, "KEY-0000", grant=operator)
    assert await any_shop.keys.void_key(theirs, found.key_id, grant=operator, actor="telegram:5") == 1
    before = await key_statuses(any_shop, other)
    with pytest.raises(NotPermitted):
        await any_shop.keys.find(other, "KEY-0000", grant=operator)
    mine = await any_shop.keys.find(other, "KEY-0000", grant=OWNER)
    with pytest.raises(NotPermitted):  # a forged button with another product's key id
        await any_shop.keys.void_key(other, mine.key_id, grant=operator, actor="telegram:5")
    with pytest.raises(NotPermitted):
        await any_shop.keys.void_batch(other, 1, grant=operator, actor="telegram:5")
    with pytest.raises(NotPermitted):
        await any_shop.stock.import_keys(other, io.BytesIO(b"NEW\n"), grant=operator)
    assert await key_statuses(any_shop, other) == before


async def test_keys_are_voided_and_exported_only_for_unique_key_products(any_shop: Services) -> None:
    pid = await any_shop.catalog.add_product(draft(delivery_kind=DeliveryKind.MANUAL))
    with pytest.raises(StockNotKept):
        await any_shop.keys.unsold(pid, grant=OWNER)
    with pytest.raises(StockNotKept):
        await any_shop.stock.import_keys(pid, io.BytesIO(b"K\n"))


async def test_an_owner_exports_the_unsold_keys_once_per_confirmation_and_it_is_audited(
    any_shop: Services,
) -> None:
    pid = await stocked(any_shop, 4)
    await _sell_one(any_shop, pid)
    sold = {f"KEY-000{i}" for i in range(4)} - {
        k
        for k in (f"KEY-000{i}" for i in range(4))
        if (await any_shop.keys.find(pid, k, grant=OWNER)).status is KeyStatus.AVAILABLE
    }
    product, count = await any_shop.keys.unsold(pid, grant=OWNER)
    assert (product.id, count, len(sold)) == (pid, 3, 1)
    keys = await any_shop.keys.export(pid, grant=OWNER, actor="telegram:1", request=10)
    assert sorted(keys) == sorted({f"KEY-000{i}" for i in range(4)} - sold)
    with pytest.raises(ExportAlreadySent):  # the same confirmation again
        await any_shop.keys.export(pid, grant=OWNER, actor="telegram:1", request=10)
    with pytest.raises(ExportAlreadySent):  # an older one
        await any_shop.keys.export(pid, grant=OWNER, actor="telegram:1", request=9)
    assert len(await any_shop.keys.export(pid, grant=OWNER, actor="telegram:2", request=9)) == 3
    assert await _audit(any_shop, "keys_exported") == [
        ("telegram:1", pid, {"count": 3, "request": 10}),
        ("telegram:2", pid, {"count": 3, "request": 9}),
    ]
    assert await key_statuses(any_shop, pid) == {"available": 3, "sold": 1}  # a copy: stock unchanged


async def test_an_export_bigger_than_the_channel_takes_is_refused_before_it_is_claimed_or_audited(
    any_shop: Services,
) -> None:
    pid = await stocked(any_shop, 3)
    await _import(any_shop, pid, ["卡密-長い-0001"])  # multi-byte: sized in UTF-8 bytes, not characters
    keys = await any_shop.keys.export(pid, grant=OWNER, actor="telegram:9", request=1)
    exact = len(("\n".join(keys) + "\n").encode())  # the file the chat would send
    with pytest.raises(ExportTooLarge) as refused:
        await any_shop.keys.export(pid, grant=OWNER, actor="telegram:1", request=5, max_bytes=exact - 1)
    assert refused.value.params["count"] == 4 and refused.value.params["product_id"] == pid
    assert [a for a, _, _ in await _audit(any_shop, "keys_exported")] == ["telegram:9"]  # no reveal recorded
    # the confirmation was not used up: the same one goes through within the limit
    again = await any_shop.keys.export(pid, grant=OWNER, actor="telegram:1", request=5, max_bytes=exact)
    assert sorted(again) == sorted(keys)
    assert [a for a, _, _ in await _audit(any_shop, "keys_exported")] == ["telegram:9", "telegram:1"]


async def test_only_owners_export_keys(any_shop: Services) -> None:
    pid = await stocked(any_shop, 2)
    for grant in (ADMIN, Grant(Role.OPERATOR)):
        with pytest.raises(NotPermitted):
            await any_shop.keys.unsold(pid, grant=grant)
        with pytest.raises(NotPermitted):
            await any_shop.keys.export(pid, grant=grant, actor="telegram:3", request=1)
    assert await _audit(any_shop, "keys_exported") == []


async def test_two_taps_on_one_export_confirmation_at_once_reveal_the_keys_once(any_shop: Services) -> None:
    pid = await stocked(any_shop, 3)
    results = await asyncio.gather(
        *(any_shop.keys.export(pid, grant=OWNER, actor="telegram:1", request=7) for _ in range(4)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, list) for r in results) == 1, results
    assert all(isinstance(r, ExportAlreadySent) for r in results if not isinstance(r, list))
    assert len(await _audit(any_shop, "keys_exported")) == 1
