"""Lengths of every text field, keyboards and buttons, and the command menu, as Telegram limits them."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.telegram import Emulator
from tests.unit.sandbox.telegram.conftest import USER, call, refused


def inline(*rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"inline_keyboard": list(rows)}


def cb(text: str = "b", data: str = "x") -> dict[str, Any]:
    return {"text": text, "callback_data": data}


async def test_message_text_is_1_to_4096_characters_after_parsing(emu: Emulator) -> None:
    for text in ("", "   \n "):
        assert (
            "message text is empty"
            in (await refused(emu, "sendMessage", chat_id=USER, text=text)).description
        )
    assert (
        "text is empty"
        in (await refused(emu, "sendMessage", chat_id=USER, text="<b></b>", parse_mode="HTML")).description
    )
    assert (
        "message is too long"
        in (await refused(emu, "sendMessage", chat_id=USER, text="x" * 4097)).description
    )
    await call(emu, "sendMessage", chat_id=USER, text="x" * 4096)
    # markup does not count: 4096 visible characters inside tags are fine
    await call(emu, "sendMessage", chat_id=USER, text="<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    await call(emu, "sendMessage", chat_id=USER, text="&amp;" * 4096, parse_mode="HTML")


async def test_message_length_counts_code_points_as_tdlib_does(emu: Emulator) -> None:
    # tdlib checks utf8_length (code points), so 4096 emoji (8192 UTF-16 units) still fit
    await call(emu, "sendMessage", chat_id=USER, text="😀" * 4096)
    assert "too long" in (await refused(emu, "sendMessage", chat_id=USER, text="键" * 4097)).description


async def test_edited_text_obeys_the_same_1_to_4096_limit(emu: Emulator) -> None:
    msg = await call(emu, "sendMessage", chat_id=USER, text="short")
    mid = msg["message_id"]
    e = await refused(emu, "editMessageText", chat_id=USER, message_id=mid, text="x" * 4097)
    assert "message is too long" in e.description
    e = await refused(emu, "editMessageText", chat_id=USER, message_id=mid, text=" ")
    assert "message text is empty" in e.description


async def test_captions_are_0_to_1024_characters_on_send_and_edit(emu: Emulator) -> None:
    doc = ("keys.txt", b"K")
    e = await refused(emu, "sendDocument", chat_id=USER, document=doc, caption="x" * 1025)
    assert "message caption is too long" in e.description
    msg = await call(emu, "sendDocument", chat_id=USER, document=doc, caption="x" * 1024)
    await call(emu, "sendDocument", chat_id=USER, document=doc)
    e = await refused(
        emu, "editMessageCaption", chat_id=USER, message_id=msg["message_id"], caption="y" * 1025
    )
    assert "message caption is too long" in e.description
    edited = await call(emu, "editMessageCaption", chat_id=USER, message_id=msg["message_id"], caption="y")
    assert edited["caption"] == "y"


async def test_a_callback_answer_text_is_at_most_200_characters(emu: Emulator) -> None:
    sent = await call(emu, "sendMessage", chat_id=USER, text="m", reply_markup=inline([cb()]))
    first, second = await emu.tap(USER, sent, "x"), await emu.tap(USER, sent, "x")
    e = await refused(emu, "answerCallbackQuery", callback_query_id=first, text="x" * 201)
    assert "MESSAGE_TOO_LONG" in e.description
    await call(emu, "answerCallbackQuery", callback_query_id=second, text="x" * 200)


@pytest.mark.parametrize(
    ("button", "fragment"),
    [
        ({"text": "", "callback_data": "x"}, "button text must be non-empty"),
        ({"callback_data": "x"}, "button text must be non-empty"),
        ({"text": "b"}, "Text buttons are unallowed in the inline keyboard"),
        ({"text": "b", "callback_data": "x", "url": "https://t.me/x"}, "exactly one action field"),
        ({"text": "b", "callback_data": ""}, "BUTTON_DATA_INVALID"),
        ({"text": "b", "callback_data": "x" * 65}, "BUTTON_DATA_INVALID"),
        ({"text": "b", "callback_data": "键" * 22}, "BUTTON_DATA_INVALID"),  # 66 bytes
        ({"text": "b", "url": "javascript:alert(1)"}, "inline keyboard button Wrong"),
        ({"text": "b", "url": "ftp://example.com/x"}, "Unsupported URL protocol"),
        ({"text": "b", "url": "https://localhost/x"}, "Wrong HTTP URL"),
        ({"text": "b", "url": "not a url"}, "Wrong HTTP URL"),
        ({"text": "b", "url": "tg://res olve"}, "Wrong tg URL"),
    ],
)
async def test_every_inline_button_has_text_and_exactly_one_valid_action(
    emu: Emulator, button: dict[str, Any], fragment: str
) -> None:
    e = await refused(emu, "sendMessage", chat_id=USER, text="m", reply_markup=inline([button]))
    assert e.code == 400 and fragment in e.description


@pytest.mark.parametrize(
    "url", ["https://t.me/keyshop_bot?start=abc", "http://example.com", "t.me/x", "tg://resolve?domain=x"]
)
async def test_url_buttons_take_t_me_http_https_and_tg_links(emu: Emulator, url: str) -> None:
    await call(emu, "sendMessage", chat_id=USER, text="m", reply_markup=inline([{"text": "b", "url": url}]))


async def test_callback_data_of_64_bytes_fits(emu: Emulator) -> None:
    await call(emu, "sendMessage", chat_id=USER, text="m", reply_markup=inline([cb(data="键" * 21 + "x")]))


async def test_an_inline_keyboard_has_at_most_100_buttons_and_8_a_row(emu: Emulator) -> None:
    ten_rows_of_8 = [[cb(data=f"{r}.{c}") for c in range(8)] for r in range(12)]  # 96
    await call(emu, "sendMessage", chat_id=USER, text="m", reply_markup=inline(*ten_rows_of_8, [cb()] * 4))
    e = await refused(
        emu, "sendMessage", chat_id=USER, text="m", reply_markup=inline(*ten_rows_of_8, [cb()] * 5)
    )
    assert e.description == "Bad Request: reply markup is too long"
    e = await refused(emu, "sendMessage", chat_id=USER, text="m", reply_markup=inline([cb()] * 9))
    assert e.description == "Bad Request: reply markup is too long"
    msg = await call(emu, "sendMessage", chat_id=USER, text="m")
    e = await refused(
        emu,
        "editMessageReplyMarkup",
        chat_id=USER,
        message_id=msg["message_id"],
        reply_markup=inline([cb()] * 9),
    )
    assert "reply markup is too long" in e.description


async def test_reply_keyboards_have_non_empty_buttons_and_a_sane_size(emu: Emulator) -> None:
    e = await refused(emu, "sendMessage", chat_id=USER, text="m", reply_markup={"keyboard": [[{"text": ""}]]})
    assert "Keyboard button text must be non-empty" in e.description
    e = await refused(emu, "sendMessage", chat_id=USER, text="m", reply_markup={"keyboard": [["k"] * 13]})
    assert "reply markup is too long" in e.description
    e = await refused(
        emu, "sendMessage", chat_id=USER, text="m", reply_markup={"keyboard": [["k"] * 12] * 26}
    )
    assert "reply markup is too long" in e.description
    await call(emu, "sendMessage", chat_id=USER, text="m", reply_markup={"keyboard": [["k"] * 12] * 25})


async def test_edits_take_only_inline_keyboards(emu: Emulator) -> None:
    msg = await call(emu, "sendMessage", chat_id=USER, text="m")
    e = await refused(
        emu,
        "editMessageText",
        chat_id=USER,
        message_id=msg["message_id"],
        text="n",
        reply_markup={"keyboard": [["k"]]},
    )
    assert "inline keyboard expected" in e.description


async def test_a_real_message_never_echoes_a_reply_keyboard(emu: Emulator) -> None:
    keyboard = {"keyboard": [[{"text": "Share", "request_contact": True}]], "resize_keyboard": True}
    msg = await call(emu, "sendMessage", chat_id=USER, text="Your phone?", reply_markup=keyboard)
    assert "reply_markup" not in msg
    sent = emu.messages(USER)[-1]
    assert "reply_markup" not in sent.message and sent.reply_keyboard == keyboard
    assert [b["text"] for b in sent.keyboard_buttons] == ["Share"] and emu.keyboards[USER] == keyboard
    removed = await call(emu, "sendMessage", chat_id=USER, text="ok", reply_markup={"remove_keyboard": True})
    assert "reply_markup" not in removed and USER not in emu.keyboards
    forced = await call(emu, "sendMessage", chat_id=USER, text="?", reply_markup={"force_reply": True})
    assert "reply_markup" not in forced and emu.messages(USER)[-1].reply_keyboard == {"force_reply": True}
    with_inline = await call(emu, "sendMessage", chat_id=USER, text="m", reply_markup=inline([cb()]))
    assert with_inline["reply_markup"] == inline([cb()])


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        ({"command": "Start", "description": "d"}, "BOT_COMMAND_INVALID"),
        ({"command": "x" * 33, "description": "d"}, "BOT_COMMAND_INVALID"),
        ({"command": "my-cmd", "description": "d"}, "BOT_COMMAND_INVALID"),
        ({"command": "", "description": "d"}, "BOT_COMMAND_INVALID"),
        ({"command": "ok", "description": ""}, "DESCRIPTION_INVALID"),
        ({"command": "ok", "description": "d" * 257}, "DESCRIPTION_INVALID"),
    ],
)
async def test_commands_are_1_to_32_lowercase_letters_digits_or_underscores_with_a_description(
    emu: Emulator, command: dict[str, str], fragment: str
) -> None:
    e = await refused(emu, "setMyCommands", commands=[command])
    assert fragment in e.description


@pytest.mark.parametrize("code", ["zh_CN", "zh-hans", "EN", "eng", "z"])
async def test_command_language_is_a_two_letter_iso_639_1_code_or_empty(emu: Emulator, code: str) -> None:
    e = await refused(
        emu, "setMyCommands", commands=[{"command": "start", "description": "d"}], language_code=code
    )
    assert e.description == "Bad Request: invalid language code specified"


async def test_commands_in_two_languages_are_kept_apart(emu: Emulator) -> None:
    await call(emu, "setMyCommands", commands=[{"command": "start", "description": "Start"}])
    await call(
        emu, "setMyCommands", commands=[{"command": "start", "description": "开始"}], language_code="zh"
    )
    assert emu.commands["zh"][0]["description"] == "开始" and emu.commands[""][0]["description"] == "Start"
    assert (
        "at most 100"
        in (
            await refused(emu, "setMyCommands", commands=[{"command": "a", "description": "d"}] * 101)
        ).description
    )
