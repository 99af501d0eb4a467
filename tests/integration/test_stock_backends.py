"""The stock import's bulk paths differ per database (executemany vs COPY): the rules must hold on both."""

from __future__ import annotations

import io

import pytest

from core.models import STARS
from core.services import Services
from tests.conftest import buyer, stocked
from tests.unit.test_stock import ExplodingStream, staged_rows, total_keys


async def test_import_skips_duplicates_within_the_file_and_against_stock(any_shop: Services) -> None:
    pid = await stocked(any_shop, 2)  # KEY-0000, KEY-0001
    rep = await any_shop.stock.import_keys(pid, io.BytesIO(b"KEY-0001\nN1\nN1\n\nN2\n"))
    assert (rep.added, rep.duplicates, rep.invalid) == (2, 2, 1)
    assert await any_shop.stock.available(pid) == 4
    assert await staged_rows(any_shop) == 0


async def test_a_failed_import_changes_no_stock(any_shop: Services) -> None:
    pid = await stocked(any_shop, 1)
    with pytest.raises(OSError):
        await any_shop.stock.import_keys(pid, ExplodingStream(after=30), batch_size=7)
    assert await total_keys(any_shop) == 1 and await staged_rows(any_shop) == 0


async def test_imported_keys_are_sold_and_revealed_intact(any_shop: Services) -> None:
    pid = await stocked(any_shop, 0)
    await any_shop.stock.import_keys(pid, io.BytesIO("卡密-Ω-1\n".encode()))
    uid = await buyer(any_shop)
    o = await any_shop.checkout.checkout(uid, pid, 1, STARS)
    await any_shop.payments.confirm_payment("telegram", "c", o.ref, o.amount, STARS)
    assert (await any_shop.orders.reveal(o.ref, user_id=uid, actor="u", reason="t")).keys == ["卡密-Ω-1"]
