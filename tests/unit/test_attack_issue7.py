"""Attack on the issue 7 restructure: each test states a rule the new code breaks (failing until fixed)."""

from __future__ import annotations

import pytest
from aiogram.types import Message, Update
from sqlalchemy import text

from bot.settings import SettingsError, load_settings
from core.clock import FrozenClock
from core.messages import KeysDelivered, UnknownMessage, decode
from core.services import Services
from tests.conftest import buyer
from tests.unit.test_admin_router import BUYER, AdminScreens, _message, _private, _user, screens
from tests.unit.test_outbox_unreadable import _add, _status

__all__ = ["screens"]  # the fixture, reused


async def test_no_admin_router_handler_of_any_update_type_is_reached_by_a_buyer(
    screens: AdminScreens,
) -> None:
    # AdminOnly gates only router.message and router.callback_query: a handler an admin feature registers
    # on edited_message, business_message, inline_query, ... of the admin router sees everyone.
    seen: list[Message] = []
    router = screens.dp.sub_routers[0]

    async def probe(event: Message) -> None:
        seen.append(event)

    router.edited_message.register(probe)
    router.business_message.register(probe)
    edited = _message(_user(BUYER), _private(BUYER))
    await screens.dp.feed_update(screens.bot, Update(update_id=1, edited_message=edited))
    await screens.dp.feed_update(screens.bot, Update(update_id=2, business_message=edited))
    assert seen == []


async def test_an_outbox_row_whose_payload_is_not_utf8_is_set_aside_and_the_rest_still_claimed(
    shop: Services, clock: FrozenClock
) -> None:
    uid = await buyer(shop, "77")
    bad = await _add(shop, uid, KeysDelivered.KIND, {"order_ref": "X"}, clock)
    await _add(shop, uid, KeysDelivered.KIND, {"order_ref": "GOOD"}, clock)
    async with shop.ctx.uow() as uow:  # damaged bytes (disk, a hand edit): CAST AS TEXT cannot decode them
        await uow.repo.conn.execute(text("UPDATE outbox SET payload = X'FF7B' WHERE id = :i"), {"i": bad})
        await uow.commit()
    claimed = await shop.outbox.claim("telegram")
    assert [m.message for m in claimed] == [KeysDelivered("GOOD")]
    assert (await _status(shop, bad))[0] == "failed"


@pytest.mark.parametrize("order_ref", [None, ["R"], {"R": 1}, 7])
def test_decode_refuses_a_field_of_the_wrong_type(order_ref: object) -> None:
    # a damaged row must be set aside at claim time, not handed to a deliverer to fail and be retried
    with pytest.raises(UnknownMessage):
        decode(KeysDelivered.KIND, {"order_ref": order_ref})


@pytest.mark.parametrize("value", ["١٢٣", "1_000", "0", "-1001234567890", "9" * 30])
def test_admin_ids_accept_only_telegram_user_ids_in_ascii_digits(value: str) -> None:
    # unicode digits, digit separators, 0, a group's chat id (admin alerts would go to a group) and numbers
    # no Telegram id reaches are all taken silently today
    with pytest.raises(SettingsError, match="ADMIN_IDS"):
        load_settings(None, admin_ids=value)
