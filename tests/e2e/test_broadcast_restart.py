"""A broadcast survives a restart, and two bot processes on one database do not double it: the bot stops
mid-way and starts again (or a second bot runs beside the first); every buyer gets the message exactly
once, the counts add up, the one progress message is edited by one process at a time (never refused as
"not modified", never set back) to its final figures, and Cancel still works after the restart."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from bot.app import Storefront, make_bot
from bot.settings import Settings
from handlers.telegram.ui.callbacks import BroadcastCb
from sandbox.telegram import Sent
from tests.e2e.conftest import ADMIN, TOKEN, Shop, without_calendar_jobs
from tests.e2e.test_broadcast import OWNER, STAFF_ADMIN, _buyer, _compose, _until

PACED = {"bulk_per_second": 5.0, "bulk_per_round": 2}  # slow enough to stop mid-way
TEXT = "Restart sale"


async def _setup(shop: Shop, buyers: list[int]) -> None:
    shop.emu.user(OWNER, "Owen")
    shop.emu.user(STAFF_ADMIN, "Ada")
    await shop.rebuild(admin_ids=[ADMIN, OWNER], sender=PACED)
    shop.front.dp.workflow_data["broadcaster"].every = 0.3
    pid = await shop.product(name="Netflix 1M")
    for b in buyers:
        await _buyer(shop, b, pid)
    assert "Saved" in (await shop.say(OWNER, f"/staff admin {STAFF_ADMIN}")).text


def _got(shop: Shop, buyer: int) -> int:
    return sum(TEXT in s.text for s in shop.emu.messages(buyer))


def _edits_of(shop: Shop, message_id: int) -> tuple[list[Sent], list[dict[str, Any]]]:
    """The progress message's edits that took effect, and every edit the bots asked for."""
    done = [
        s
        for s in shop.emu.messages(STAFF_ADMIN)
        if s.method == "editMessageText" and s.message["message_id"] == message_id
    ]
    asked = [p for m, p in shop.emu.calls if m.lower() == "editmessagetext"]
    asked = [p for p in asked if str(p.get("message_id")) == str(message_id)]
    return done, asked


def _sent_figures(edits: list[Sent]) -> list[int]:
    return [int(m.group(1)) for s in edits if (m := re.search(r"Sent: (\d+)", s.text))]


async def test_a_broadcast_under_way_when_the_bot_stops_is_finished_after_it_starts_again(shop: Shop) -> None:
    buyers = list(range(631, 643))
    await _setup(shop, buyers)
    control = await _compose(shop, f"<b>{TEXT}</b>")
    progress = await shop.tap(STAFF_ADMIN, control, f"Send to {len(buyers)}")
    mid = progress.message["message_id"]
    await _until(shop, buyers[1], lambda s: TEXT in s.text)

    await shop.rebuild(admin_ids=[ADMIN, OWNER], sender=PACED)  # stops mid-way, starts again
    shop.front.dp.workflow_data["broadcaster"].every = 0.3
    before = sum(_got(shop, b) for b in buyers)
    assert 2 <= before < len(buyers)  # it was under way
    shop.clock.advance(minutes=3)  # what the stopped sender held (its lease: 2 minutes) comes due

    final = await _until(shop, STAFF_ADMIN, lambda s: "Finished" in s.text, within=20)
    await asyncio.sleep(0.5)
    assert [_got(shop, b) for b in buyers] == [1] * len(buyers)  # none lost, none twice
    assert f"Sent: {len(buyers)} · failed: 0 · blocked the bot: 0" in final.text and not final.buttons
    done, asked = _edits_of(shop, mid)
    assert done[-1].text == final.text and len(done) == len(asked)  # no edit refused
    assert shop.emu.messages(STAFF_ADMIN)[-1].text == final.text
    figures = _sent_figures(done)
    assert figures == sorted(figures)  # never set back


async def test_cancel_works_after_a_restart(shop: Shop) -> None:
    buyers = list(range(651, 671))
    await _setup(shop, buyers)
    control = await _compose(shop, f"<i>{TEXT}</i>")
    progress = await shop.tap(STAFF_ADMIN, control, f"Send to {len(buyers)}")
    stop = progress.button("Cancel broadcast")["callback_data"]
    await _until(shop, buyers[0], lambda s: TEXT in s.text)

    await shop.rebuild(admin_ids=[ADMIN, OWNER], sender=PACED)
    shop.front.dp.workflow_data["broadcaster"].every = 0.3
    await _until(shop, buyers[3], lambda s: TEXT in s.text)  # the restarted bot sends
    answer = await shop.answer_to(await shop.tap_data(STAFF_ADMIN, progress, stop))
    assert "nothing more is sent" in str(answer["text"])
    shop.clock.advance(minutes=3)  # what the stopped sender held is withdrawn when it comes due
    final = await _until(shop, STAFF_ADMIN, lambda s: "Cancelled." in s.text, within=15)
    await asyncio.sleep(1.0)  # nothing more arrives
    got = [_got(shop, b) for b in buyers]
    assert set(got) <= {0, 1} and got[3] == 1 and sum(got) < len(buyers)
    sent = sum(got)
    assert f"Sent: {sent} · failed: 0 · blocked the bot: 0 · not sent: {len(buyers) - sent}" in final.text
    done, asked = _edits_of(shop, progress.message["message_id"])
    assert done[-1].text == final.text and len(done) == len(asked)


async def test_two_bots_on_one_database_send_a_broadcast_once_and_edit_its_progress_one_at_a_time(
    shop: Shop,
) -> None:
    buyers = list(range(681, 701))
    await _setup(shop, buyers)
    settings = Settings.load(_env_file=None, admin_ids=[ADMIN, OWNER])
    second = without_calendar_jobs(
        Storefront.build(
            shop.services, settings, make_bot(TOKEN, shop.url), sender={"private_interval": 0.05, **PACED}
        )
    )
    second.dp.workflow_data["broadcaster"].every = 0.3
    await second.start_background()  # a second process: its own sender and broadcast runner
    try:
        control = await _compose(shop, f"<b>{TEXT}</b>")
        progress = await shop.tap(STAFF_ADMIN, control, f"Send to {len(buyers)}")
        mid = progress.message["message_id"]
        bid = BroadcastCb.unpack(progress.button("Cancel")["callback_data"]).broadcast_id
        second.dp.workflow_data["broadcaster"].run(second.bot, bid)  # it takes the broadcast up too
        final = await _until(shop, STAFF_ADMIN, lambda s: "Finished" in s.text, within=20)
        await asyncio.sleep(1.0)
    finally:
        await second.dp.workflow_data["broadcaster"].stop()
        await second.stop()
    assert [_got(shop, b) for b in buyers] == [1] * len(buyers)
    assert f"Sent: {len(buyers)} · failed: 0 · blocked the bot: 0" in final.text
    done, asked = _edits_of(shop, mid)
    assert done[-1].text == final.text and len(done) == len(asked)  # never two at once, never "not modified"
    figures = _sent_figures(done)
    assert figures == sorted(figures)  # never set back
