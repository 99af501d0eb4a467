"""The admins' job messages are read when they are sent, so they go only to who may read them then: staff
taken off (or an operator's scope narrowed) between the job writing the message and the outbox sending it
(a backlog, Telegram away, a 429) hear nothing of the payout queue, the daily summary or a product no
longer theirs; the owners and the staff still entitled do."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.i18n import build_i18n
from core.clock import FrozenClock
from core.db import Database
from core.models import STARS
from core.roles import Role
from core.services import Services
from core.vault import Vault
from handlers.telegram.alerts import AdminAlerts
from handlers.telegram.workers.messages import Outgoing, deliver
from tests.admin_jobs import OPERATOR, OWNER, STAFF_ADMIN, add_staff, credit, owned
from tests.conftest import buyer, stocked

SLOT = "2026-01-05T10:00Z"


class _Bot:
    """Who the deliverers sent something to."""

    def __init__(self) -> None:
        self.chats: list[int] = []

    async def send_message(self, chat_id: int, *_: Any, **__: Any) -> None:
        self.chats.append(chat_id)

    async def send_photo(self, chat_id: int, *_: Any, **__: Any) -> None:
        self.chats.append(chat_id)


@pytest.fixture
def shop(db: Database, vault: Vault, clock: FrozenClock) -> Services:
    return owned(db, vault, clock)


async def _send_all(shop: Services) -> list[str]:
    """Every due message delivered as the outbox sender would; the chats that got something."""
    bot, i18n = _Bot(), build_i18n()
    for item in await shop.outbox.claim("telegram"):
        with i18n.context(), i18n.use_locale("en"):
            await deliver(Outgoing(bot, shop, AdminAlerts(bot, []), item))  # type: ignore[arg-type]
    return sorted(str(c) for c in bot.chats)


async def test_staff_taken_off_before_the_payout_queue_is_sent_never_see_it(shop: Services) -> None:
    await add_staff(shop)
    uid = await buyer(shop, "41")
    await credit(shop, uid, 800)
    await shop.payouts.request(uid, "USD", "PayPal ann@example.com", key="k-41")
    assert (await shop.payout_run.run(SLOT)).admins == 2  # the owner and the staff admin
    await shop.staff.remove("telegram", STAFF_ADMIN, actor="cli")
    assert await _send_all(shop) == [OWNER]


async def test_staff_taken_off_before_the_daily_summary_is_sent_never_see_it(
    shop: Services, clock: FrozenClock
) -> None:
    await add_staff(shop)
    clock.advance(days=1)
    assert await shop.daily_summary.send((clock.now() - timedelta(days=1)).date()) == 2
    await shop.staff.remove("telegram", STAFF_ADMIN, actor="cli")
    assert await _send_all(shop) == [OWNER]


async def test_an_operator_whose_scope_left_the_product_hears_nothing_of_its_stock(shop: Services) -> None:
    pid = await stocked(shop, 1, name="Mine", low_stock_threshold=2)
    other = await stocked(shop, 1, name="Other")
    await add_staff(shop, operator_products=(pid,))
    assert await shop.stock_alerts.check() == 3  # low: the owner, the staff admin, the operator
    await shop.staff.put("telegram", OPERATOR, Role.OPERATOR, actor="cli", owners=[OWNER], products=(other,))
    await shop.staff.remove("telegram", STAFF_ADMIN, actor="cli")
    assert await _send_all(shop) == [OWNER]
    # Still theirs: told as before.
    await shop.staff.put("telegram", OPERATOR, Role.OPERATOR, actor="cli", owners=[OWNER], products=(pid,))
    await shop.checkout.checkout(await buyer(shop, "1001"), pid, 1, STARS)
    assert await shop.stock_alerts.check() == 2
    assert await _send_all(shop) == [OWNER, OPERATOR]
