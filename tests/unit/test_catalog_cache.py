"""The in-memory catalog (core/catalog_cache.py): the shelf and cards cost no database trip, a checkout here
shows at once, and another process's changes show within the cache's poll interval."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Awaitable
from typing import Any

import pytest

from core.catalog_cache import CatalogCache
from core.context import Context, ShopConfig
from core.db import Database
from core.services import Services
from core.services import catalog as catalog_service
from core.vault import Vault
from tests.conftest import buyer, stocked


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


def services(db: Database, vault: Vault, ticks: Ticks) -> Services:
    cache = CatalogCache(poll=1.0, stock_ttl=2.0, clock=ticks)
    return Services(Context(db=db, vault=vault, config=ShopConfig(currency="USD"), catalog=cache))


def count_trips(db: Database, monkeypatch: pytest.MonkeyPatch, kind: str = "read") -> list[int]:
    """Every trip to the database's threads of ``kind`` ("read" or "run", a write) from now on."""
    seen: list[int] = []
    real = getattr(db, kind)

    async def counted(job: Any, *args: Any) -> Any:
        seen.append(1)
        return await real(job, *args)

    monkeypatch.setattr(db, kind, counted)
    return seen


async def test_showing_the_shelf_and_a_card_again_costs_no_database_trip(
    db: Database, vault: Vault, ticks: Ticks, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = services(db, vault, ticks)
    pid = await stocked(shop, 5)
    assert [(p.id, n) for p, n in await shop.catalog.shelf()] == [(pid, 5)]
    reads = count_trips(db, monkeypatch)
    for _ in range(20):
        await shop.catalog.shelf()
        assert (await shop.catalog.card(pid))[1] == 5
    assert reads == []


async def test_a_checkout_here_takes_its_keys_off_the_count_shown_at_once(
    db: Database, vault: Vault, ticks: Ticks, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = services(db, vault, ticks)
    pid = await stocked(shop, 5)
    uid = await buyer(shop)
    await shop.catalog.card(pid)
    reads = count_trips(db, monkeypatch)
    await shop.checkout.checkout(uid, pid, 2, "XTR")
    assert (await shop.catalog.card(pid))[1] == 3
    assert reads == []


async def test_keys_released_here_show_again_at_the_next_view(
    db: Database, vault: Vault, ticks: Ticks
) -> None:
    shop = services(db, vault, ticks)
    pid = await stocked(shop, 5)
    uid = await buyer(shop)
    order = await shop.checkout.checkout(uid, pid, 2, "XTR")
    assert (await shop.catalog.card(pid))[1] == 3
    await shop.orders.cancel(order.ref, user_id=uid, actor="test")
    assert (await shop.catalog.card(pid))[1] == 5


async def test_another_processs_product_edit_shows_within_the_poll_interval(
    db: Database, vault: Vault, ticks: Ticks
) -> None:
    here, there = services(db, vault, ticks), services(db, vault, ticks)
    pid = await stocked(here, 1)
    assert (await here.catalog.card(pid))[0].name == "Steam 10 USD"
    await there.catalog.update_product(pid, name="Steam 20 USD")
    ticks.now += 0.5
    assert (await here.catalog.card(pid))[0].name == "Steam 10 USD"  # within the interval: as it was
    ticks.now += 0.6
    assert (await here.catalog.card(pid))[0].name == "Steam 20 USD"


async def test_another_processs_import_and_sales_show_within_the_poll_interval(
    db: Database, vault: Vault, ticks: Ticks
) -> None:
    here, there = services(db, vault, ticks), services(db, vault, ticks)
    pid = await stocked(here, 3)
    assert (await here.catalog.card(pid))[1] == 3
    await there.stock.import_keys(pid, io.BytesIO(b"NEW-1\nNEW-2\n"))
    uid = await buyer(there)
    await there.checkout.checkout(uid, pid, 1, "XTR")
    ticks.now += 1.1
    assert (await here.catalog.card(pid))[1] == 4


async def test_a_product_taken_off_sale_leaves_the_shelf_at_once_here(
    db: Database, vault: Vault, ticks: Ticks
) -> None:
    shop = services(db, vault, ticks)
    pid = await stocked(shop, 3)
    assert [p.id for p, _ in await shop.catalog.shelf()] == [pid]
    await shop.catalog.update_product(pid, active=False)
    assert await shop.catalog.shelf() == []


class HeldRefresh:
    """The catalog's reload, held after it has read the database and before it hands its snapshot over:
    what another view's reload looks like while this process changes the catalog."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.read, self.go = threading.Event(), threading.Event()
        real = catalog_service._refresh

        def held(*args: Any) -> Any:
            out = real(*args)
            self.read.set()
            self.go.wait(10)
            return out

        monkeypatch.setattr(catalog_service, "_refresh", held)
        self._undo = lambda: monkeypatch.setattr(catalog_service, "_refresh", real)

    async def start(self, view: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(view)
        assert await asyncio.to_thread(self.read.wait, 10)
        return task

    async def finish(self, task: asyncio.Task[Any]) -> None:
        self._undo()
        self.go.set()
        await task


async def test_a_product_taken_off_sale_here_while_a_view_reloads_the_catalog_leaves_the_shelf_at_once(
    db: Database, vault: Vault, ticks: Ticks, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = services(db, vault, ticks)
    pid = await stocked(shop, 3)
    held = HeldRefresh(monkeypatch)
    view = await held.start(shop.catalog.shelf())  # a buyer's view is reloading the catalog...
    await shop.catalog.update_product(pid, active=False)  # ...when the admin takes the product off sale
    await held.finish(view)
    assert await shop.catalog.shelf() == []
    assert not (await shop.catalog.card(pid))[0].active


async def test_keys_released_here_while_a_view_reloads_the_catalog_show_at_the_next_view(
    db: Database, vault: Vault, ticks: Ticks, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = services(db, vault, ticks)
    pid = await stocked(shop, 5)
    uid = await buyer(shop)
    order = await shop.checkout.checkout(uid, pid, 2, "XTR")
    held = HeldRefresh(monkeypatch)
    view = await held.start(shop.catalog.card(pid))
    await shop.orders.cancel(order.ref, user_id=uid, actor="test")
    await held.finish(view)
    assert (await shop.catalog.card(pid))[1] == 5


async def test_after_the_last_key_a_newcomers_buy_is_refused_without_queueing_for_the_writer(
    db: Database, vault: Vault, ticks: Ticks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flash sale's crowd after the last key: the fresh in-memory catalog says sold out, so the refusal
    costs no write transaction; the buyer who took the last key still gets their order again."""
    from core.errors import OutOfStock
    from core.models import UserIdentity

    shop = services(db, vault, ticks)
    pid = await stocked(shop, 1)
    uid = await buyer(shop)
    await shop.catalog.card(pid)
    first = await shop.checkout.checkout(uid, pid, 1, "XTR")
    writes = count_trips(db, monkeypatch, "run")
    with pytest.raises(OutOfStock):
        await shop.checkout.checkout(UserIdentity("telegram", "9001", "en"), pid, 1, "XTR")
    assert writes == []
    again, created, _ = await shop.checkout.checkout_or_reuse(uid, pid, 1, "XTR")  # a double tap
    assert (again.ref, created) == (first.ref, False)
