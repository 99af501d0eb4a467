from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from core import tables as t
from core.clock import FrozenClock
from core.context import STARS, Context
from core.errors import InvalidInput, ProductNotFound
from core.models import DeliveryKind, ImportReport
from core.services import Services
from core.uow import UnitOfWork
from core.vault import Vault, new_key_spec, parse_keys
from tests.conftest import buyer, draft, in_read, in_write, query, sql, stocked


class ExplodingStream(io.RawIOBase):
    """A file that breaks after ``after`` lines, like a network share going away mid-import."""

    def __init__(self, after: int) -> None:
        self.lines: Iterator[bytes] = (f"K{i}\n".encode() for i in range(after))

    def read(self, size: int | None = -1) -> bytes:  # a raw stream may return less than asked: a line
        try:
            return next(self.lines)
        except StopIteration:
            raise OSError("connection to the file share was lost") from None

    readline = read  # type: ignore[assignment]

    def readable(self) -> bool:
        return True


async def staged_rows(shop: Services) -> int:
    ((n,),) = await query(shop, select(func.count()).select_from(t.stock_import_rows))
    return int(n)


async def total_keys(shop: Services) -> int:
    return await in_read(shop, lambda uow: uow.repo.keys.count_all())


async def test_import_reports_added_duplicate_and_invalid_lines(shop: Services) -> None:
    pid = await stocked(shop, 0)
    rep = await shop.stock.import_keys(pid, io.BytesIO(b"A\nB\nA\n\nC\xff\nB\nD\n"))
    assert (rep.added, rep.duplicates, rep.invalid, rep.lines) == (3, 2, 2, 7)
    assert [(b.line, b.reason) for b in rep.invalid_samples] == [(4, "blank"), (5, "undecodable")]
    again = await shop.stock.import_keys(pid, io.BytesIO(b"A\nE\n"))
    assert (again.added, again.duplicates) == (1, 1)  # A is already in stock
    assert await shop.stock.available(pid) == 4


async def test_duplicates_are_found_among_sold_keys_too(shop: Services) -> None:
    pid = await stocked(shop, 1)
    o = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "c", o.ref, o.amount, STARS)
    rep = await shop.stock.import_keys(pid, io.BytesIO(b"KEY-0000\n"))
    assert (rep.added, rep.duplicates) == (0, 1)


async def test_keys_of_an_earlier_import_are_sold_before_those_of_a_later_one(shop: Services) -> None:
    pid = await stocked(shop, 0)
    await shop.stock.import_keys(pid, io.BytesIO(b"OLD-1\nOLD-2\n"))
    await shop.stock.import_keys(pid, io.BytesIO(b"NEW-1\nNEW-2\n"))
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 2, STARS)
    await shop.payments.confirm_payment("telegram", "c", o.ref, o.amount, STARS)
    got = (await shop.orders.reveal(o.ref, user_id=uid, actor="u", reason="t")).keys
    assert sorted(got) == ["OLD-1", "OLD-2"]


async def test_the_same_key_may_be_stocked_by_two_products(shop: Services) -> None:
    p1, p2 = await stocked(shop, 0), await stocked(shop, 0)
    for pid in (p1, p2):
        assert (await shop.stock.import_keys(pid, io.BytesIO(b"SAME\n"))).added == 1


async def test_an_import_that_fails_halfway_leaves_stock_as_it_was(shop: Services) -> None:
    pid = await stocked(shop, 3)
    with pytest.raises(OSError):
        await shop.stock.import_keys(pid, ExplodingStream(after=25), batch_size=10)
    levels = (await shop.stock.levels(pid))[0]
    assert (levels.available, levels.reserved, levels.sold) == (3, 0, 0)
    assert await staged_rows(shop) == 0 and await total_keys(shop) == 3  # nothing left behind
    # and the same keys can be imported afterwards
    rep = await shop.stock.import_keys(pid, io.BytesIO(b"".join(f"K{i}\n".encode() for i in range(25))))
    assert rep.added == 25


async def test_staged_keys_are_invisible_to_buyers_until_the_import_finishes(shop: Services) -> None:
    pid = await stocked(shop, 0)
    seen: list[int] = []

    async def peek() -> None:
        seen.append(await shop.stock.available(pid))

    import asyncio

    def progress(rep: ImportReport) -> None:
        asyncio.get_running_loop().create_task(peek())

    rep = await shop.stock.import_keys(
        pid, io.BytesIO(b"".join(b"K%d\n" % i for i in range(50))), batch_size=10, progress=progress
    )
    await asyncio.sleep(0.05)
    assert rep.added == 50
    assert 0 in seen and await shop.stock.available(pid) == 50
    assert all(n in (0, 50) for n in seen)


async def test_keys_staged_by_a_process_that_died_are_removed_by_the_sweeper(
    shop: Services, clock: FrozenClock
) -> None:
    pid = await stocked(shop, 0)
    # a process that died mid-import: its import row stays 'running' and its rows stay staged

    def start_and_stage(uow: UnitOfWork) -> int:
        iid = uow.repo.imports.start(pid, "cli", clock.now())
        bidx, blob = shop.ctx.vault.seal_key(pid, "ORPHAN")
        uow.repo.imports.stage(iid, "k1", [(bidx, blob)])
        return iid

    iid = await in_write(shop, start_and_stage)
    assert await shop.stock.abandon_stale_imports() == 0  # still fresh: could be running right now
    assert await staged_rows(shop) == 1
    si = t.stock_imports  # its last heartbeat, 11 minutes ago by the database's clock
    old = datetime.now(UTC) - timedelta(minutes=11)
    await sql(shop, update(si).where(si.c.id == iid).values(heartbeat_at=old))
    assert await shop.stock.abandon_stale_imports() == 1
    assert await staged_rows(shop) == 0 and await total_keys(shop) == 0


async def test_import_into_a_missing_or_non_unique_product_is_refused(shop: Services) -> None:
    with pytest.raises(ProductNotFound):
        await shop.stock.import_keys(999, io.BytesIO(b"A\n"))
    shared = await shop.catalog.add_product(draft(delivery_kind=DeliveryKind.SHARED))
    with pytest.raises(InvalidInput):
        await shop.stock.import_keys(shared, io.BytesIO(b"A\n"))


async def test_the_database_file_holds_no_imported_key_in_plaintext(shop: Services, tmp_path: Path) -> None:
    pid = await stocked(shop, 0)
    secret = [f"PLAINTEXT-SECRET-{i:05d}" for i in range(300)]
    await shop.stock.import_keys(pid, io.BytesIO("\n".join(secret).encode()))
    o = await shop.checkout.checkout(await buyer(shop), pid, 2, STARS)
    await shop.payments.confirm_payment("telegram", "c", o.ref, o.amount, STARS)
    await shop.orders.reveal(o.ref, user_id=None, actor="admin", reason="check")
    await shop.ctx.db.dispose()  # checkpoint the WAL into the main file
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("shop.db*"))
    assert raw  # the file exists and was read
    assert b"PLAINTEXT-SECRET" not in raw
    assert "PLAINTEXT-SECRET".encode("utf-16-le") not in raw


async def test_vault_rotation_reencrypts_everything_and_resumes_after_interruption(
    shop: Services, vault_spec: str, clock: FrozenClock
) -> None:
    pid = await stocked(shop, 120)
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 2, STARS)
    await shop.payments.confirm_payment("telegram", "c", o.ref, o.amount, STARS)
    new_spec = new_key_spec("k2")
    rotated = Vault(parse_keys(f"{vault_spec},{new_spec}"))
    s2 = Services(Context(shop.ctx.db, rotated, shop.ctx.config, clock))

    calls = 0

    def stop_after_two_batches(done: int, total: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await s2.stock.rotate_vault(batch_size=50, progress=stop_after_two_batches)
    assert await s2.stock.rotate_vault(batch_size=50) == 20  # 120 - 2 batches of 50
    assert await s2.stock.rotate_vault() == 0
    # every ciphertext now opens with the new key alone
    only_new = Vault.from_spec(new_spec)
    s3 = Services(Context(shop.ctx.db, only_new, shop.ctx.config, clock))
    got = (await s3.orders.reveal(o.ref, user_id=uid, actor="u", reason="t")).keys
    assert len(got) == 2 and all(k.startswith("KEY-") for k in got)
