from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.exc import OperationalError

from core.clock import FrozenClock
from core.messages import KeysDelivered, RefundDue
from core.models import STARS
from core.services import Services
from core.services import outbox as outbox_service
from core.services.outbox import MAX_ATTEMPTS
from core.uow import UnitOfWork
from tests.conftest import buyer, stocked


async def test_a_claimed_message_is_not_offered_again_until_its_lease_runs_out(
    shop: Services, clock: FrozenClock
) -> None:
    pid = await stocked(shop, 1)
    o = await shop.checkout.checkout(await buyer(shop, "77"), pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "c", o.ref, o.amount, STARS)
    first = await shop.outbox.claim("telegram")
    assert [(m.external_id, m.message) for m in first] == [("77", KeysDelivered(o.ref))]
    assert await shop.outbox.claim("telegram") == []  # leased to the first sender
    clock.advance(minutes=3)  # that sender died without reporting
    assert [m.id for m in await shop.outbox.claim("telegram")] == [first[0].id]
    await shop.outbox.sent(first[0].id)
    clock.advance(minutes=3)
    assert await shop.outbox.claim("telegram") == []


async def test_a_message_that_keeps_failing_is_retried_then_given_up(
    shop: Services, clock: FrozenClock
) -> None:
    pid = await stocked(shop, 1)
    o = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "c", o.ref, o.amount, STARS)
    (msg,) = await shop.outbox.claim("telegram")
    for attempt in range(1, MAX_ATTEMPTS + 1):
        keep = await shop.outbox.retry(msg.id, after=timedelta(seconds=5), error="500")
        assert keep is (attempt < MAX_ATTEMPTS)
        clock.advance(seconds=6)
        again = await shop.outbox.claim("telegram")
        assert [m.id for m in again] == ([msg.id] if keep else [])


async def test_every_payment_the_shop_cannot_keep_is_queued_for_refund(shop: Services) -> None:
    pid = await stocked(shop, 2)
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "wrong", o.ref, o.amount + 1, STARS)  # rejected
    await shop.payments.confirm_payment("telegram", "good", o.ref, o.amount, STARS)
    await shop.payments.confirm_payment("telegram", "twice", o.ref, o.amount, STARS)  # second charge
    await shop.payments.confirm_payment("telegram", "nobody", "NOSUCH", 5, STARS, payer_id=uid)  # no order
    await shop.refunds.request_refund(o.ref, actor="admin:1")  # the good one, refunded by an admin
    claimed = await shop.outbox.claim("telegram")
    refunds = [m.message.charge_id for m in claimed if isinstance(m.message, RefundDue)]
    assert refunds == ["wrong", "twice", "nobody", "good"]


async def test_a_channel_claims_only_its_own_users_messages(shop: Services) -> None:
    pid = await stocked(shop, 2)
    wechat = (await shop.users.ensure("wechat", "oOPENID")).id
    o = await shop.checkout.checkout(wechat, pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "c", o.ref, o.amount, STARS)
    assert await shop.outbox.claim("telegram") == []
    assert [m.external_id for m in await shop.outbox.claim("wechat")] == ["oOPENID"]


async def test_marking_a_round_sent_rides_out_a_brief_database_hiccup(
    shop: Services, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sender's whole round (up to a hundred messages) is marked sent in one transaction: one failure
    there must not send them all again."""
    pid = await stocked(shop, 3)
    for i in range(3):
        o = await shop.checkout.checkout(await buyer(shop, f"7{i}"), pid, 1, STARS)
        await shop.payments.confirm_payment("telegram", f"c{i}", o.ref, o.amount, STARS)
    claimed = await shop.outbox.claim("telegram")
    real, fails = outbox_service._sent_many, [OperationalError("UPDATE outbox", {}, Exception("locked"))]

    def flaky(uow: UnitOfWork, message_ids: list[int], now: datetime) -> None:
        if fails:
            raise fails.pop()
        real(uow, message_ids, now)

    monkeypatch.setattr(outbox_service, "_sent_many", flaky)
    await shop.outbox.sent_many([m.id for m in claimed])
    clock.advance(minutes=3)  # the round's lease has run out
    assert await shop.outbox.claim("telegram") == []
