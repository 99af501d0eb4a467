"""Low-stock and out-of-stock alerts: once per crossing, re-armed by a restock above the threshold, to the
owners and the staff with the stock power whose scope covers the product."""

from __future__ import annotations

import io

import pytest

from core.clock import FrozenClock
from core.db import Database
from core.models import STARS, DeliveryKind
from core.services import Services
from core.services.stock_alerts import stock_level
from core.vault import Vault
from tests.admin_jobs import OPERATOR, OWNER, STAFF_ADMIN, add_staff, owned, recipients, sent
from tests.conftest import buyer, stocked

KIND = "stock_alert"


@pytest.fixture
def shop(db: Database, vault: Vault, clock: FrozenClock) -> Services:
    return owned(db, vault, clock)


async def _take(shop: Services, pid: int, n: int, who: str = "1001") -> None:
    """``n`` keys leave the available stock (reserved by a checkout)."""
    await shop.checkout.checkout(await buyer(shop, who), pid, n, STARS)


async def _restock(shop: Services, pid: int, n: int, tag: str) -> None:
    data = "".join(f"NEW-{tag}-{i}\n" for i in range(n)).encode()
    await shop.stock.import_keys(pid, io.BytesIO(data))


async def _alerts(shop: Services) -> list[tuple[int, str, int]]:
    return [(f["product_id"], f["level"], f["available"]) for _, _, f in await sent(shop, KIND)]


def test_levels_are_out_at_none_low_at_or_under_the_threshold_and_none_above() -> None:
    assert [stock_level(n, 3) for n in (0, 1, 3, 4)] == ["out", "low", "low", None]
    assert [stock_level(n, 0) for n in (0, 1)] == ["out", None]  # threshold 0: only ever out


async def test_a_crossing_alerts_once_however_often_the_job_looks(shop: Services) -> None:
    pid = await stocked(shop, 5, low_stock_threshold=3)
    assert await shop.stock_alerts.check() == 0
    await _take(shop, pid, 2)
    assert await shop.stock_alerts.check() == 1
    for _ in range(3):
        assert await shop.stock_alerts.check() == 0
    await _take(shop, pid, 1, "1002")  # lower still, still above none: nothing new
    assert await shop.stock_alerts.check() == 0
    assert await _alerts(shop) == [(pid, "low", 3)]


async def test_running_out_alerts_separately_and_a_restock_above_the_threshold_rearms(shop: Services) -> None:
    pid = await stocked(shop, 4, low_stock_threshold=3)
    await _take(shop, pid, 1)
    assert await shop.stock_alerts.check() == 1  # low: 3 left
    await _take(shop, pid, 3, "1002")
    assert await shop.stock_alerts.check() == 1  # out
    assert await shop.stock_alerts.check() == 0
    await _restock(shop, pid, 5, "a")
    assert await shop.stock_alerts.check() == 0  # above the threshold again: re-armed, nothing said
    await _take(shop, pid, 2, "1003")
    assert await shop.stock_alerts.check() == 1  # the next crossing alerts again
    assert await _alerts(shop) == [(pid, "low", 3), (pid, "out", 0), (pid, "low", 3)]


async def test_a_restock_that_stays_at_or_under_the_threshold_is_quiet_and_running_out_again_alerts(
    shop: Services,
) -> None:
    pid = await stocked(shop, 1, low_stock_threshold=3)
    assert await shop.stock_alerts.check() == 1  # low: 1 left
    await _take(shop, pid, 1)
    assert await shop.stock_alerts.check() == 1  # out
    await _restock(shop, pid, 2, "a")
    assert await shop.stock_alerts.check() == 0  # 2: low, not re-armed
    await _take(shop, pid, 2, "1002")
    assert await shop.stock_alerts.check() == 1  # out again
    assert [level for _, level, _ in await _alerts(shop)] == ["low", "out", "out"]


async def test_straight_from_above_the_threshold_to_none_alerts_out_of_stock_only(shop: Services) -> None:
    pid = await stocked(shop, 4, low_stock_threshold=2)
    await _take(shop, pid, 4)
    assert await shop.stock_alerts.check() == 1
    assert await _alerts(shop) == [(pid, "out", 0)]


async def test_a_threshold_of_zero_gets_only_the_out_of_stock_alert(shop: Services) -> None:
    pid = await stocked(shop, 2)
    await _take(shop, pid, 1)
    assert await shop.stock_alerts.check() == 0
    await _take(shop, pid, 1, "1002")
    assert await shop.stock_alerts.check() == 1
    assert await _alerts(shop) == [(pid, "out", 0)]


async def test_inactive_shared_and_manual_products_are_never_alerted(shop: Services) -> None:
    await stocked(shop, 0, active=False)
    await stocked(shop, 0, name="Manual", delivery_kind=DeliveryKind.MANUAL)
    shared = await stocked(shop, 0, name="Shared", delivery_kind=DeliveryKind.SHARED)
    await shop.stock.set_shared_key(shared, "SHARED-KEY")
    assert await shop.stock_alerts.check() == 0
    assert await sent(shop) == []


async def test_owners_always_and_staff_with_the_stock_power_within_their_scope_are_alerted(
    shop: Services,
) -> None:
    mine = await stocked(shop, 3, name="Operator's")
    other = await stocked(shop, 3, name="Not the operator's")
    await add_staff(shop, operator_products=(mine,))
    await _take(shop, mine, 3)
    await _take(shop, other, 3, "1002")
    assert await shop.stock_alerts.check() == 5
    rows = [(who, f["product_id"]) for who, _, f in await sent(shop, KIND)]
    assert sorted(rows) == sorted(
        [(OWNER, mine), (STAFF_ADMIN, mine), (OPERATOR, mine), (OWNER, other), (STAFF_ADMIN, other)]
    )


async def test_an_admin_who_blocked_the_bot_is_not_alerted(shop: Services) -> None:
    owner = await shop.users.ensure("telegram", OWNER)
    await shop.users.set_bot_blocked(owner.id, True)
    await add_staff(shop)
    pid = await stocked(shop, 1)
    await _take(shop, pid, 1)
    assert await shop.stock_alerts.check() == 2
    assert await recipients(shop, KIND) == [STAFF_ADMIN, OPERATOR]


async def test_an_owner_who_never_wrote_to_the_bot_gets_a_user_row_with_the_alert(
    db: Database, vault: Vault, clock: FrozenClock
) -> None:
    shop = owned(db, vault, clock, owner_ids=("100", "101"))
    pid = await stocked(shop, 1)
    await _take(shop, pid, 1)
    assert await shop.stock_alerts.check() == 2
    assert await recipients(shop, KIND) == ["100", "101"]
    assert (await shop.users.find("telegram", "101")) is not None
