from __future__ import annotations

from core.clock import FrozenClock
from core.models import OrderStatus
from core.services import STARS, Services
from scheduler.jobs import build_scheduler, clear_abandoned_imports, expire_reservations
from tests.conftest import buyer, stocked


async def test_the_sweeper_job_expires_unpaid_orders_and_restocks(shop: Services, clock: FrozenClock) -> None:
    pid = await stocked(shop, 2)
    o = await shop.orders.checkout(await buyer(shop), pid, 2, STARS)
    assert await expire_reservations(shop) == 0
    clock.advance(minutes=16)
    assert await expire_reservations(shop) == 1
    assert (await shop.orders.get(o.ref)).status is OrderStatus.EXPIRED
    assert await shop.stock.available(pid) == 2
    assert await clear_abandoned_imports(shop) == 0


async def test_the_scheduler_runs_every_sweeper_job_one_at_a_time(shop: Services) -> None:
    sched = build_scheduler(shop)
    jobs = {j.id: j for j in sched.get_jobs()}
    assert set(jobs) == {"expire_reservations", "clear_abandoned_imports", "process_payment_notices"}
    assert all(j.max_instances == 1 and j.coalesce for j in jobs.values())
