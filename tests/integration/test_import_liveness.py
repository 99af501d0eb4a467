"""An import that is alive is never swept; one that was swept never reports success (issue #6, defect 8).

Heartbeats and the staleness check both use the database's clock, so two hosts (the CLI importing, the bot
sweeping) whose clocks disagree cannot take a live import for a dead one; publishing locks the import,
refuses one that was swept and checks that every staged key is still there.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, update

import core.services.stock as stock_module
from core import tables as t
from core.clock import FrozenClock
from core.errors import ImportAbandoned, ImportIncomplete
from core.services import Services
from core.services.stock import StockService
from tests.conftest import in_write, query, sql, stocked
from tests.unit.test_stock import staged_rows, total_keys


def keys(n: int) -> io.BytesIO:
    return io.BytesIO(b"".join(b"K%d\n" % i for i in range(n)))


async def age_heartbeat(shop: Services, import_id: int, by: timedelta) -> None:
    """As if the import had sent no heartbeat for ``by`` (on the real clock, which the database shares)."""
    si = t.stock_imports
    await sql(shop, update(si).where(si.c.id == import_id).values(heartbeat_at=datetime.now(UTC) - by))


async def import_row(shop: Services, import_id: int) -> tuple[str, datetime]:
    si = t.stock_imports
    (r,) = await query(shop, select(si.c.status, si.c.heartbeat_at).where(si.c.id == import_id))
    return r[0], r[1]


def after_stage(
    monkeypatch: pytest.MonkeyPatch, shop: Services, nth: int, then: Callable[[int], Awaitable[None]]
) -> None:
    """Run ``then(import_id)`` right after the import's ``nth`` batch is staged (1-based)."""
    original = StockService._stage
    calls = 0

    async def stage(self: StockService, import_id: int, *args: object, **kw: object) -> None:
        nonlocal calls
        await original(self, import_id, *args, **kw)  # type: ignore[arg-type]
        calls += 1
        if calls == nth:
            await then(import_id)

    monkeypatch.setattr(StockService, "_stage", stage)


@pytest.mark.parametrize("swept_after_batch", [1, 3], ids=["mid-import", "just-before-publishing"])
async def test_an_import_swept_as_abandoned_fails_and_adds_no_stock(
    any_shop: Services, monkeypatch: pytest.MonkeyPatch, swept_after_batch: int
) -> None:
    pid = await stocked(any_shop, 2)

    async def sweep(import_id: int) -> None:
        await age_heartbeat(any_shop, import_id, timedelta(minutes=11))
        assert await any_shop.stock.abandon_stale_imports() == 1

    after_stage(monkeypatch, any_shop, swept_after_batch, sweep)
    with pytest.raises(ImportAbandoned) as e:
        await any_shop.stock.import_keys(pid, keys(25), batch_size=10)  # batches of 10, 10, 5
    assert "nothing was added to stock" in str(e.value)
    assert await any_shop.stock.available(pid) == 2 and await total_keys(any_shop) == 2
    assert await staged_rows(any_shop) == 0


async def test_an_import_whose_staged_keys_went_missing_fails_and_adds_no_stock(
    any_shop: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = await stocked(any_shop, 0)

    async def lose_some(import_id: int) -> None:
        s = t.stock_import_rows
        victim = select(s.c.id).where(s.c.import_id == import_id).limit(3).scalar_subquery()
        await sql(any_shop, delete(s).where(s.c.id.in_(victim)))

    after_stage(monkeypatch, any_shop, 2, lose_some)
    with pytest.raises(ImportIncomplete) as e:
        await any_shop.stock.import_keys(pid, keys(25), batch_size=10)
    assert e.value.params == {"import_id": e.value.params["import_id"], "expected": 25, "staged": 22}
    assert await total_keys(any_shop) == 0 and await staged_rows(any_shop) == 0
    status, _ = await import_row(any_shop, e.value.params["import_id"])
    assert status == "failed"


async def test_the_import_heartbeat_is_the_database_clock_not_the_process_clock(
    any_shop: Services, clock: FrozenClock
) -> None:
    pid = await stocked(any_shop, 0)
    clock.advance(hours=-5)  # the importing host's clock is hours behind
    iid = await in_write(any_shop, lambda uow: uow.repo.imports.start(pid, "cli", clock.now()))
    _, beat = await import_row(any_shop, iid)
    assert abs(beat - datetime.now(UTC)) < timedelta(minutes=1)
    clock.advance(hours=10)  # the sweeping host's clock is hours ahead
    assert await any_shop.stock.abandon_stale_imports() == 0  # alive: its heartbeat is seconds old
    assert (await import_row(any_shop, iid))[0] == "running"
    await age_heartbeat(any_shop, iid, timedelta(minutes=9))
    assert await any_shop.stock.abandon_stale_imports() == 0
    await age_heartbeat(any_shop, iid, timedelta(minutes=11))
    assert await any_shop.stock.abandon_stale_imports() == 1
    assert (await import_row(any_shop, iid))[0] == "failed"


async def test_a_slow_stream_keeps_its_import_alive_between_batches(
    any_shop: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines trickling in (a slow upload) never fill a batch, yet the import keeps beating."""
    pid = await stocked(any_shop, 0)
    ticks = itertools.count(0, 20)  # the process's monotonic clock moves 20 s per line read
    monkeypatch.setattr(stock_module, "monotonic", lambda: float(next(ticks)))
    beats: list[tuple[int, datetime]] = []
    real_beat = StockService._beat

    async def beat(self: StockService, import_id: int, lines: int) -> None:
        await real_beat(self, import_id, lines)
        beats.append((lines, (await import_row(any_shop, import_id))[1]))

    monkeypatch.setattr(StockService, "_beat", beat)
    rep = await any_shop.stock.import_keys(pid, keys(6), batch_size=10_000)
    assert rep.added == 6
    assert [lines for lines, _ in beats] == [2, 4, 6]  # every 30 s of the stream, not every batch
    assert all(abs(at - datetime.now(UTC)) < timedelta(minutes=1) for _, at in beats)
