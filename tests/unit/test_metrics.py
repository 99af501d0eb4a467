"""/metrics: the shop's figures read at scrape time, counters counted as things happen, each storefront
with a registry of its own, and nothing personal in any of it. /healthz: fast, and naming what is away."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from bot.metrics import ShopMetrics
from bot.ops import check_health
from core import tables as t
from core.clock import FrozenClock
from core.models import STARS
from core.services import Services
from handlers.telegram.health import Health
from tests.conftest import bought, buyer, sql, stocked
from tests.unit.test_resilience import REFUSED


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


async def test_metrics_show_orders_by_status_the_outbox_backlog_and_the_jobs_record(
    shop: Services, clock: FrozenClock
) -> None:
    uid = await buyer(shop, "7001")
    await bought(shop, uid)  # delivered: its keys wait in the outbox
    pid = await stocked(shop, 2)
    await shop.checkout.checkout(uid, pid, 1, STARS)  # pending
    await sql(
        shop,
        insert(t.job_runs),
        [
            {
                "name": "expire_reservations",
                "runs": 12,
                "failures": 1,
                "last_ok": True,
                "last_finished_at": datetime(2026, 1, 1, tzinfo=UTC),
            },
            {
                "name": "settle_commissions",
                "runs": 3,
                "failures": 3,
                "last_ok": False,
                "last_finished_at": None,
            },
        ],
    )
    clock.advance(seconds=90)
    metrics = ShopMetrics(shop, Health())
    metrics.delivered("order_delivered")
    metrics.rate_limited("outbox")
    got = samples(await metrics.render())
    assert got[("keyshop_orders", (("status", "delivered"),))] == 1
    assert got[("keyshop_orders", (("status", "pending"),))] == 1
    assert got[("keyshop_orders", (("status", "refunded"),))] == 0  # every status, even at zero
    assert got[("keyshop_outbox_pending", ())] == 1
    assert got[("keyshop_outbox_oldest_due_seconds", ())] == 90
    assert got[("keyshop_outbox_delivered_total", (("kind", "order_delivered"),))] == 1
    assert got[("keyshop_telegram_rate_limited_total", (("source", "outbox"),))] == 1
    assert got[("keyshop_telegram_rate_limited_total", (("source", "replies"),))] == 0
    assert got[("keyshop_job_runs_total", (("job", "expire_reservations"),))] == 12
    assert got[("keyshop_job_failures_total", (("job", "settle_commissions"),))] == 3
    assert got[("keyshop_job_last_ok", (("job", "expire_reservations"),))] == 1
    assert got[("keyshop_job_last_ok", (("job", "settle_commissions"),))] == 0
    assert got[("keyshop_dependency_up", (("dependency", "database"),))] == 1


async def test_metrics_name_no_user_key_or_text(shop: Services) -> None:
    uid = await buyer(shop, "7123456")
    order = await bought(shop, uid, name="Secret Product Name")
    body = (await ShopMetrics(shop, Health()).render()).decode()
    for personal in ("7123456", "KEY-0000", "Secret Product Name", order.ref):
        assert personal not in body


async def test_two_storefronts_in_one_process_count_apart(shop: Services) -> None:
    a, b = ShopMetrics(shop, Health()), ShopMetrics(shop, Health())
    a.delivered("order_delivered")
    got_b = samples(await b.render())
    assert got_b[("keyshop_outbox_delivered_total", (("kind", "order_delivered"),))] == 0


async def test_without_the_database_metrics_still_answer_with_what_this_process_counted(
    shop: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def away() -> None:
        raise REFUSED

    monkeypatch.setattr(shop.monitoring, "figures", away)
    health = Health()
    metrics = ShopMetrics(shop, health)
    metrics.delivered("order_delivered")
    got = samples(await metrics.render())
    assert got[("keyshop_outbox_delivered_total", (("kind", "order_delivered"),))] == 1
    assert got[("keyshop_dependency_up", (("dependency", "database"),))] == 0
    assert not any(name == "keyshop_orders" for name, _ in got)


def _front(shop: Services, storage: Any = None) -> Any:
    return SimpleNamespace(services=shop, dp=SimpleNamespace(storage=storage), health=Health())


async def test_health_says_ok_when_the_database_answers(shop: Services) -> None:
    assert await check_health(_front(shop)) == {"database": "ok"}


async def test_health_names_a_database_that_refuses_or_is_too_slow(
    shop: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refused() -> None:
        raise REFUSED

    async def stuck() -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(shop.monitoring, "ping", refused)
    front = _front(shop)
    assert await check_health(front) == {"database": "unreachable"}
    assert front.health.database.up is False
    monkeypatch.setattr(shop.monitoring, "ping", stuck)
    assert await asyncio.wait_for(check_health(front, within=0.05), 2) == {"database": "timeout"}


async def test_health_asks_redis_only_when_there_is_one(shop: Services) -> None:
    pinged = []

    async def ping() -> None:
        pinged.append(True)

    assert await check_health(_front(shop, SimpleNamespace(ping=ping))) == {"database": "ok", "redis": "ok"}
    assert pinged == [True]


async def test_scrapes_at_once_or_within_a_second_share_one_read_of_the_database(shop: Services) -> None:
    reads = 0
    real = shop.monitoring.figures

    async def counted() -> Any:
        nonlocal reads
        reads += 1
        return await real()

    shop.monitoring.figures = counted  # type: ignore[method-assign]
    metrics = ShopMetrics(shop, Health(), fresh_for=3600)
    pages = await asyncio.gather(*(metrics.render() for _ in range(20)))
    assert reads == 1 and all(b"keyshop_orders" in p for p in pages)
    await metrics.render()
    assert reads == 1  # still fresh
    metrics.fresh_for = 0
    await metrics.render()
    assert reads == 2
