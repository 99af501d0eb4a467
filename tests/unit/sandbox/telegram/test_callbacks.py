"""Callback queries: only ids Telegram issued, answered once, within about 15 seconds."""

from __future__ import annotations

from sandbox.telegram import Emulator
from tests.unit.sandbox.telegram.conftest import USER, call, refused

TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"


async def menu(emu: Emulator) -> dict[str, object]:
    markup = {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}
    return await call(emu, "sendMessage", chat_id=USER, text="menu", reply_markup=markup)  # type: ignore[no-any-return]


async def test_only_query_ids_the_emulator_issued_can_be_answered(emu: Emulator) -> None:
    for qid in ("", "12345", "not-a-query"):
        assert (await refused(emu, "answerCallbackQuery", callback_query_id=qid)).description == TOO_OLD


async def test_a_callback_query_is_answered_once(emu: Emulator) -> None:
    qid = await emu.tap(USER, await menu(emu), "go")
    assert await call(emu, "answerCallbackQuery", callback_query_id=qid, text="ok") is True
    assert (await refused(emu, "answerCallbackQuery", callback_query_id=qid)).description == TOO_OLD
    assert emu.callback_answers[qid] == {"text": "ok", "show_alert": False}


async def test_a_callback_query_answered_more_than_15_seconds_after_the_tap_is_too_old(emu: Emulator) -> None:
    assert Emulator().callback_ttl == 15
    now = [1000.0]
    emu.clock = lambda: now[0]
    in_time = await emu.tap(USER, await menu(emu), "go")
    late = await emu.tap(USER, await menu(emu), "go")
    now[0] += 14.9
    assert await call(emu, "answerCallbackQuery", callback_query_id=in_time) is True
    now[0] += 0.2  # 15.1 s after the tap
    e = await refused(emu, "answerCallbackQuery", callback_query_id=late)
    assert (e.code, e.description) == (400, TOO_OLD)
    assert late not in emu.callback_answers
    emu.callback_ttl = 0.0  # as the end-to-end tests set it: every answer is too old
    fresh = await emu.tap(USER, await menu(emu), "go")
    now[0] += 0.01
    assert (await refused(emu, "answerCallbackQuery", callback_query_id=fresh)).description == TOO_OLD


async def test_the_tapped_message_reaches_the_bot_without_the_emulators_notes(emu: Emulator) -> None:
    await emu.tap(USER, await menu(emu), "go")
    update = emu._updates[-1]["callback_query"]
    assert update["data"] == "go" and update["message"]["text"] == "menu"
    assert not any(k.startswith("_") for k in update["message"])
