"""Review of issue 7: an outbox row no code can read must be set aside for the record, never block the rows
behind it, and a message type the outbox cannot read back must fail where it is written, not at a buyer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
from sqlalchemy import select, text

from core import tables as t
from core.clock import FrozenClock
from core.messages import KeysDelivered, Message, UnknownMessage
from core.reactions import write_message
from core.services import Services
from core.uow import UnitOfWork
from tests.conftest import buyer, in_write, query, sql


async def _status(shop: Services, message_id: int) -> tuple[str, str | None]:
    o = t.outbox
    (row,) = await query(shop, select(o.c.status, o.c.last_error).where(o.c.id == message_id))
    return row[0], row[1]


async def _add(shop: Services, uid: int, kind: str, fields: dict[str, object], clock: FrozenClock) -> int:
    def add(uow: UnitOfWork) -> int:
        uow.repo.outbox.add(uid, kind, fields, clock.now())
        o = t.outbox
        return int(uow.conn.execute(select(o.c.id).order_by(o.c.id.desc()).limit(1)).scalar_one())

    return await in_write(shop, add)


async def test_a_damaged_outbox_row_is_marked_failed_with_why_not_merely_skipped(
    shop: Services, clock: FrozenClock
) -> None:
    # claim() never returns an unreadable row, so "not offered again" alone cannot tell whether it was set
    # aside; its stored status can.
    uid = await buyer(shop, "77")
    bad = await _add(shop, uid, KeysDelivered.KIND, {"order": "no order_ref field"}, clock)
    assert await shop.outbox.claim("telegram") == []
    status, error = await _status(shop, bad)
    assert status == "failed"
    assert error is not None and error.startswith("unreadable:")


async def test_a_message_type_this_version_does_not_know_is_left_for_a_version_that_does(
    shop: Services, clock: FrozenClock
) -> None:
    # A newer process running beside this one (a rolling deploy) writes a type this one cannot read: this
    # one must neither send nor discard it.
    uid = await buyer(shop, "77")
    newer = await _add(shop, uid, "from_a_newer_version", {"x": 1}, clock)
    await _add(shop, uid, KeysDelivered.KIND, {"order_ref": "GOOD"}, clock)
    (good,) = await shop.outbox.claim("telegram")
    assert good.message == KeysDelivered("GOOD")
    await shop.outbox.sent(good.id)
    clock.advance(minutes=10)
    assert await shop.outbox.claim("telegram") == []
    assert await _status(shop, newer) == ("pending", None)


async def test_a_refund_row_whose_amount_no_integer_can_hold_is_set_aside_and_the_rest_still_claimed(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    uid = await buyer(shop, "77")
    bad = await _add(shop, uid, "payment_refund", {}, clock)
    payload = (
        '{"provider": "telegram", "charge_id": "c", "order_ref": "R", "reason": null,'
        ' "amount": 1e999, "currency": "XTR"}'
    )
    # a JSON number too large for a float reads back as inf
    await sql(shop, text("UPDATE outbox SET payload = :p WHERE id = :i"), {"p": payload, "i": bad})
    await _add(shop, uid, KeysDelivered.KIND, {"order_ref": "GOOD"}, clock)

    claimed = await shop.outbox.claim("telegram")  # must not raise: that would hold back the whole batch

    assert [m.message for m in claimed] == [KeysDelivered("GOOD")]
    assert (await _status(shop, bad))[0] == "failed"


async def test_an_outbox_row_whose_stored_payload_is_not_json_does_not_block_the_rows_behind_it(
    shop: Services, clock: FrozenClock
) -> None:
    # SQLite keeps JSON as text, so a damaged row can hold anything.
    uid = await buyer(shop, "77")
    bad = await _add(shop, uid, KeysDelivered.KIND, {"order_ref": "BAD"}, clock)
    await sql(shop, text("UPDATE outbox SET payload = '{not json' WHERE id = :i"), {"i": bad})
    await _add(shop, uid, KeysDelivered.KIND, {"order_ref": "GOOD"}, clock)

    claimed = await shop.outbox.claim("telegram")

    assert [m.message for m in claimed] == [KeysDelivered("GOOD")]


@dataclass(frozen=True, slots=True)
class _Unregistered(Message):
    """A new message type someone wrote but forgot to add to MESSAGE_TYPES."""

    KIND: ClassVar[str] = "review_unregistered"
    order_ref: str


async def test_a_message_type_the_outbox_cannot_read_back_fails_where_it_is_written(
    shop: Services, clock: FrozenClock
) -> None:
    # Otherwise every test of the new reaction passes, and each row is set aside as unreadable at send time:
    # it fails a buyer, not a test (issue 7, property 2).
    uid = await buyer(shop, "77")
    with pytest.raises(UnknownMessage):
        await shop.ctx.write(write_message, uid, _Unregistered("R1"), clock.now())


async def test_an_outbox_row_whose_payload_is_not_utf8_is_set_aside_and_the_rest_still_claimed(
    shop: Services, clock: FrozenClock
) -> None:
    uid = await buyer(shop, "77")
    bad = await _add(shop, uid, KeysDelivered.KIND, {"order_ref": "X"}, clock)
    await _add(shop, uid, KeysDelivered.KIND, {"order_ref": "GOOD"}, clock)
    # damaged bytes (disk, a hand edit): CAST AS TEXT cannot decode them
    await sql(shop, text("UPDATE outbox SET payload = X'FF7B' WHERE id = :i"), {"i": bad})
    claimed = await shop.outbox.claim("telegram")
    assert [m.message for m in claimed] == [KeysDelivered("GOOD")]
    assert (await _status(shop, bad))[0] == "failed"
