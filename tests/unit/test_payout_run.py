"""The payout run: distributors who could withdraw now are told, with the amount; the admins who pay are
told what the queue holds; once per scheduled slot."""

from __future__ import annotations

import pytest

from core.clock import FrozenClock
from core.db import Database
from core.models import STARS
from core.services import Services
from core.vault import Vault
from tests.admin_jobs import OPERATOR, OWNER, STAFF_ADMIN, add_staff, credit, owned, recipients, sent
from tests.conftest import buyer

SLOT, NEXT_SLOT = "2026-01-05T10:00Z", "2026-01-12T10:00Z"


@pytest.fixture
def shop(db: Database, vault: Vault, clock: FrozenClock) -> Services:
    return owned(db, vault, clock)  # PAYOUT_MINIMUM 500 (5.00 USD)


async def _told(shop: Services) -> list[tuple[str, str, int, int]]:
    rows = await sent(shop, "payout_ready")
    return [(who, f["currency"], f["amount"], f["payout_amount"]) for who, _, f in rows]


async def test_only_distributors_at_or_over_the_minimum_without_an_open_request_are_told(
    shop: Services,
) -> None:
    rich, exact, poor, asked = [await buyer(shop, ext) for ext in ("11", "12", "13", "14")]
    await credit(shop, rich, 1200)
    await credit(shop, exact, 500)
    await credit(shop, poor, 499)
    await credit(shop, asked, 2000)
    await shop.payouts.request(asked, "USD", "IBAN DE00 1234", key="k-asked")
    await credit(shop, asked, 900, key="more")  # earned since asking: still one open request in USD
    done = await shop.payout_run.run(SLOT)
    assert done.ran and done.distributors == 2
    assert await _told(shop) == [("11", "USD", 1200, 1200), ("12", "USD", 500, 500)]


async def test_stars_are_offered_only_at_a_stars_payout_rate_and_valued_at_it(
    db: Database, vault: Vault, clock: FrozenClock
) -> None:
    spent_only = owned(db, vault, clock)
    uid = await buyer(spent_only, "21")
    await credit(spent_only, uid, 300, STARS)
    assert (await spent_only.payout_run.run(SLOT)).distributors == 0
    paying = owned(db, vault, clock, stars_payout_rate=2)  # 2 cents a Star: 300 Stars pay 6.00 USD
    assert (await paying.payout_run.run(NEXT_SLOT)).distributors == 1
    assert await _told(paying) == [("21", STARS, 300, 600)]


async def test_a_distributor_who_blocked_the_bot_is_not_told(shop: Services) -> None:
    uid = await buyer(shop, "31")
    await credit(shop, uid, 1000)
    await shop.users.set_bot_blocked(uid, True)
    assert (await shop.payout_run.run(SLOT)).distributors == 0


async def test_the_payout_queue_goes_to_owners_and_money_admins_never_to_operators(shop: Services) -> None:
    await add_staff(shop)
    uid = await buyer(shop, "41")
    await credit(shop, uid, 800)
    await shop.payouts.request(uid, "USD", "PayPal ann@example.com", key="k-41")
    done = await shop.payout_run.run(SLOT)
    assert (done.distributors, done.admins) == (0, 2)
    assert await recipients(shop, "payout_queue") == [OWNER, STAFF_ADMIN]
    assert OPERATOR not in await recipients(shop, "payout_queue")
    q = await shop.payout_run.queue()
    assert q.requests == 1 and [(t.payout_currency, t.payout_amount) for t in q.to_pay] == [("USD", 800)]
    assert q.oldest is not None and q.oldest.user_id == uid


async def test_an_empty_queue_is_not_announced(shop: Services) -> None:
    await add_staff(shop)
    assert (await shop.payout_run.run(SLOT)).admins == 0
    assert await sent(shop) == []


async def test_a_slot_runs_once_and_the_next_slot_runs_again(shop: Services) -> None:
    uid = await buyer(shop, "51")
    await credit(shop, uid, 700)
    assert (await shop.payout_run.run(SLOT)).messages == 1
    again = await shop.payout_run.run(SLOT)
    assert not again.ran and again.messages == 0
    assert (await shop.payout_run.run(NEXT_SLOT)).messages == 1  # still not asked for: told again
    assert len(await sent(shop, "payout_ready")) == 2
