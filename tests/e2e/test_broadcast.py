"""/broadcast end to end through the emulator: an admin (not an owner) chooses the audience, writes HTML
(refused with the reason when Telegram would refuse it), sees the preview exactly as buyers get it with
the recipient count, confirms; buyers get it, the one who blocked the bot is counted as blocked, and one
progress message is edited to the end. Cancelling mid-way stops the rest. In English and Chinese."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import insert, select

from core import tables as t
from handlers.telegram.pacing import SendPacer
from sandbox.telegram import Sent
from tests.conftest import query, sql
from tests.e2e.conftest import ADMIN, Shop

OWNER, STAFF_ADMIN, STRANGER = 900_002, 900_020, 700
BUYERS = [601, 602, 603, 604]


async def _buyer(shop: Shop, tg_id: int, pid: int) -> None:
    """A buyer: a Telegram user with a paid (delivered) order."""
    shop.emu.user(tg_id, f"b{tg_id}")
    user = await shop.services.users.ensure("telegram", str(tg_id), language="en")
    now = shop.clock.now()
    order = {
        "ref": f"R{tg_id}",
        "user_id": user.id,
        "product_id": pid,
        "quantity": 1,
        "currency": "XTR",
        "amount": 50,
        "status": "delivered",
        "created_at": now,
        "expires_at": now,
        "paid_at": now,
    }
    await sql(shop.services, insert(t.orders).values(**order))


async def _setup(shop: Shop, buyers: list[int], language: str = "en") -> int:
    shop.emu.user(OWNER, "Owen")
    shop.emu.user(STAFF_ADMIN, "Ada", language)
    shop.emu.user(STRANGER, "Sam")  # used the shop, never paid: no buyer
    await shop.rebuild(admin_ids=[ADMIN, OWNER])
    pid = await shop.product(name="Netflix 1M")
    for b in buyers:
        await _buyer(shop, b, pid)
    await shop.services.users.ensure("telegram", str(STRANGER), language="en")
    assert "Saved" in (await shop.say(OWNER, f"/staff admin {STAFF_ADMIN}")).text
    return pid


async def _until(shop: Shop, user: int, predicate: Any, within: float = 10.0) -> Sent:
    return await shop.emu.wait_for(user, predicate, within=within)


async def _compose(shop: Shop, text: str, *, audience: str = "All buyers") -> Sent:
    """/broadcast → audience → text; returns the message with Confirm / Edit / Cancel."""
    choose = await shop.say(STAFF_ADMIN, "/broadcast")
    prompt = await shop.tap(STAFF_ADMIN, choose, audience)
    assert "Send the text" in prompt.text or "请发送群发内容" in prompt.text
    before = len(shop.emu.messages(STAFF_ADMIN))
    await shop.emu.send_text(STAFF_ADMIN, text)
    return await shop.emu.wait_for(STAFF_ADMIN, lambda s: bool(s.buttons), after=before)


async def test_an_admin_broadcasts_to_all_buyers_and_the_one_who_blocked_the_bot_is_counted(
    shop: Shop,
) -> None:
    await _setup(shop, BUYERS)
    choose = await shop.say(STAFF_ADMIN, "/broadcast")
    assert choose.buttons[0]["text"] == "All buyers (4)"  # the stranger never paid
    prompt = await shop.tap(STAFF_ADMIN, choose, "All buyers")
    assert "HTML" in prompt.text

    refused = await shop.say(STAFF_ADMIN, "I <3 our <b>sale</b>")
    assert "not valid" in refused.text and "Unsupported start tag" in refused.text
    before = len(shop.emu.messages(STAFF_ADMIN))
    preview = await shop.say(STAFF_ADMIN, "Tom &amp; Jerry: <b>50% off</b> today")
    assert preview.text == "Tom & Jerry: 50% off today"
    assert preview.message["entities"][0]["type"] == "bold"
    control = await shop.emu.wait_for(STAFF_ADMIN, lambda s: bool(s.buttons), after=before)
    assert "exactly as buyers will get it" in control.text and "all buyers: 4 recipients" in control.text
    assert [b["text"] for b in control.buttons] == ["✅ Send to 4", "✏️ Edit", "✖️ Cancel"]

    send = control.button("Send to 4")["callback_data"]
    shop.emu.block(BUYERS[-1])
    before = len(shop.emu.messages(STAFF_ADMIN))
    progress = await shop.tap(STAFF_ADMIN, control, "Send to 4")
    assert "Broadcast #" in progress.text and progress.buttons[0]["text"] == "✖️ Cancel broadcast"
    for b in BUYERS[:-1]:
        got = await _until(shop, b, lambda s: "Jerry" in s.text)
        assert got.text == preview.text and got.message["entities"] == preview.message["entities"]
    final = await _until(shop, STAFF_ADMIN, lambda s: "Finished" in s.text, within=15)
    assert "Sent: 3 · failed: 0 · blocked the bot: 1" in final.text and not final.buttons
    edits = [s for s in shop.emu.messages(STAFF_ADMIN)[before:] if s.method == "editMessageText"]
    assert {s.message["message_id"] for s in edits} == {control.message["message_id"]}  # one message
    assert shop.emu.messages(STRANGER) == []
    a = t.audit_log
    rows = await query(shop.services, select(a.c.actor, a.c.detail).where(a.c.action == "broadcast_started"))
    assert [(r[0], r[1]["recipients"], r[1]["audience"]) for r in rows] == [
        (f"telegram:{STAFF_ADMIN}", 4, "all")
    ]
    # a second tap on Send sends nothing twice
    again = await shop.answer_to(await shop.tap_data(STAFF_ADMIN, final, send))
    assert "already sent" in str(again["text"])
    await asyncio.sleep(0.3)
    assert sum("Jerry" in s.text for s in shop.emu.messages(BUYERS[0])) == 1


async def test_cancelling_a_broadcast_mid_way_stops_what_is_not_sent(shop: Shop) -> None:
    buyers = [611, 612, 613, 614, 615, 616]
    await _setup(shop, buyers)
    shop.front.outbox.bulk_pacer = SendPacer(2.0)  # slow enough to cancel half-way
    shop.front.dp.workflow_data["broadcaster"].every = 0.5
    control = await _compose(shop, "<i>Flash sale</i>")
    progress = await shop.tap(STAFF_ADMIN, control, "Send to 6")
    stop = progress.button("Cancel broadcast")["callback_data"]
    await _until(shop, buyers[0], lambda s: "Flash sale" in s.text)
    answer = await shop.answer_to(await shop.tap_data(STAFF_ADMIN, progress, stop))
    assert "nothing more is sent" in str(answer["text"])
    final = await _until(shop, STAFF_ADMIN, lambda s: "Cancelled." in s.text)
    await asyncio.sleep(1.5)  # nothing more arrives
    got = sum(any("Flash sale" in s.text for s in shop.emu.messages(b)) for b in buyers)
    assert 1 <= got < len(buyers)
    assert f"Sent: {got} · failed: 0 · blocked the bot: 0 · not sent: {len(buyers) - got}" in final.text
    again = await shop.answer_to(await shop.tap_data(STAFF_ADMIN, final, stop))
    assert "already over" in str(again["text"])  # cancel is idempotent


async def test_buyers_of_one_product_and_active_buyers_and_hostile_input(shop: Shop) -> None:
    pid = await _setup(shop, BUYERS[:2])
    other = await shop.product(name="Steam 10")
    await _buyer(shop, 621, other)
    choose = await shop.say(STAFF_ADMIN, "/broadcast")
    products = await shop.tap(STAFF_ADMIN, choose, "Buyers of a product")
    prompt = await shop.tap(STAFF_ADMIN, products, "Steam 10")
    assert f"product #{other}" in prompt.text
    before = len(shop.emu.messages(STAFF_ADMIN))
    await shop.emu.send_text(STAFF_ADMIN, "For Steam buyers")
    control = await shop.emu.wait_for(STAFF_ADMIN, lambda s: bool(s.buttons), after=before)
    assert "✅ Send to 1" in control.buttons[0]["text"]
    draft_send = control.buttons[0]["callback_data"]
    edit = await shop.tap(STAFF_ADMIN, control, "Edit")
    assert "Send the text" in edit.text
    before = len(shop.emu.messages(STAFF_ADMIN))
    await shop.emu.send_text(STAFF_ADMIN, "For <b>Steam</b> buyers")
    control2 = await shop.emu.wait_for(STAFF_ADMIN, lambda s: bool(s.buttons), after=before)
    assert control2.buttons[0]["callback_data"] == draft_send  # the same draft
    dropped = await shop.tap(STAFF_ADMIN, control2, "Cancel")
    assert "nothing was sent" in dropped.text

    choose = await shop.say(STAFF_ADMIN, "/broadcast")
    ask = await shop.tap(STAFF_ADMIN, choose, "active lately")
    assert "1 to 365" in ask.text
    for bad in ("0", "366", "abc", "99999999999999999999", "<b>7</b>"):
        assert "from 1 to 365" in (await shop.say(STAFF_ADMIN, bad)).text, bad
    prompt = await shop.say(STAFF_ADMIN, "30")
    assert "in the last 30 days" in prompt.text
    before = len(shop.emu.messages(STAFF_ADMIN))
    await shop.emu.send_text(STAFF_ADMIN, "Thanks!")
    control = await shop.emu.wait_for(STAFF_ADMIN, lambda s: bool(s.buttons), after=before)
    assert "✅ Send to 3" in control.buttons[0]["text"]

    # forged buttons: an unknown broadcast, an unknown product
    for data in ("abc:go:424242", "aba:product:424242"):
        answer = await shop.answer_to(await shop.tap_data(STAFF_ADMIN, control, data))
        assert "no such broadcast" in str(answer["text"]) or "no longer exists" in str(answer["text"]), data
    rows = await query(shop.services, select(t.broadcasts.c.status))
    assert sorted(r[0] for r in rows) == ["cancelled", "draft"]  # nothing started
    _ = pid


async def test_a_broadcast_in_chinese(shop: Shop) -> None:
    await _setup(shop, BUYERS[:2], language="zh-hans")
    menu = await shop.say(STAFF_ADMIN, "/admin")
    assert "📣 群发" in [b["text"] for b in menu.buttons]
    choose = await shop.tap(STAFF_ADMIN, menu, "群发")
    assert "发给谁" in choose.text
    prompt = await shop.tap(STAFF_ADMIN, choose, "全部买家")
    assert "请发送群发内容" in prompt.text
    refused = await shop.say(STAFF_ADMIN, "<b>限时优惠")
    assert "HTML 格式无效" in refused.text
    before = len(shop.emu.messages(STAFF_ADMIN))
    await shop.emu.send_text(STAFF_ADMIN, "<b>限时优惠</b>")
    control = await shop.emu.wait_for(STAFF_ADMIN, lambda s: bool(s.buttons), after=before)
    assert "共 2 人" in control.text
    await shop.tap(STAFF_ADMIN, control, "发送给 2 人")
    for b in BUYERS[:2]:
        await _until(shop, b, lambda s: s.text == "限时优惠")
    final = await _until(shop, STAFF_ADMIN, lambda s: "已完成" in s.text, within=15)
    assert "已发送：2" in final.text
