"""Inline mode: queries only for a bot with inline mode, answerInlineQuery as Telegram checks it, a chosen
result posted via the bot, and the chosen_inline_result feedback."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.telegram import Emulator
from tests.unit.sandbox.telegram.conftest import USER, call, refused

GROUP = -1001
FRIEND = 2
TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
BUY = {"inline_keyboard": [[{"text": "Buy", "url": "https://t.me/keyshop_sandbox_bot?start=rAbCdEfGhIj_p1"}]]}


def article(rid: str = "p1", text: str = "<b>Steam</b> 10", **fields: Any) -> dict[str, Any]:
    return {
        "type": "article",
        "id": rid,
        "title": "Steam",
        "input_message_content": {"message_text": text, "parse_mode": "HTML"},
        **fields,
    }


@pytest.fixture
def inline(emu: Emulator) -> Emulator:
    emu.inline_mode = True
    emu.group(GROUP, "Shoppers", members=[USER, FRIEND])
    return emu


async def answer(emu: Emulator, qid: str, **params: Any) -> Any:
    return await call(emu, "answerInlineQuery", inline_query_id=qid, **params)


async def test_inline_queries_come_only_to_a_bot_with_inline_mode(emu: Emulator) -> None:
    assert (await call(emu, "getMe"))["supports_inline_queries"] is False
    with pytest.raises(ValueError, match="setinline"):
        await emu.inline_query(USER, "steam")
    emu.inline_mode = True
    assert (await call(emu, "getMe"))["supports_inline_queries"] is True


async def test_an_inline_query_says_who_asked_what_and_from_which_kind_of_chat(inline: Emulator) -> None:
    group = inline.chats[GROUP]
    await inline.inline_query(USER, "steam 10", chat=group, offset="20")
    await inline.inline_query(USER, "", to_user=FRIEND)
    await inline.inline_query(USER, "x")
    queries = [u["inline_query"] for u in inline._updates[-3:]]
    assert queries[0]["from"]["id"] == USER and queries[0]["query"] == "steam 10"
    assert queries[0]["offset"] == "20" and queries[0]["chat_type"] == "supergroup"
    assert [q["chat_type"] for q in queries[1:]] == ["private", "sender"]
    with pytest.raises(ValueError, match="256"):
        await inline.inline_query(USER, "x" * 257)
    with pytest.raises(ValueError, match="not a member"):
        await inline.inline_query(99, "x", chat=group)


async def test_an_inline_query_is_answered_once_within_10_seconds(inline: Emulator) -> None:
    assert Emulator().inline_ttl == 10
    now = [1000.0]
    inline.clock = lambda: now[0]
    for qid in ("", "12345"):
        assert (await refused(inline, "answerInlineQuery", inline_query_id=qid)).description == TOO_OLD
    first = await inline.inline_query(USER, "a")
    late = await inline.inline_query(USER, "b")
    now[0] += 9.9
    assert await answer(inline, first, results=[article()]) is True
    assert (await refused(inline, "answerInlineQuery", inline_query_id=first)).description == TOO_OLD
    now[0] += 0.2
    e = await refused(inline, "answerInlineQuery", inline_query_id=late, results=[])
    assert (e.code, e.description) == (400, TOO_OLD)
    assert late not in inline.inline_answers


@pytest.mark.parametrize(
    ("results", "description"),
    [
        ("nope", "Expected an Array of inline query results"),
        ([article(f"p{i}") for i in range(51)], "Too many inline query results specified"),
        (["x"], "Can't parse inline query result: Inline query result must be an object"),
        ([{"id": "1", "title": "t", "message_text": "m"}], 'Can\'t find field "type"'),
        ([{"type": "article", "title": "t", "message_text": "m"}], 'Can\'t find field "id"'),
        ([{"type": "article", "id": "1", "title": "t"}], 'Can\'t find field "message_text"'),
        ([article(title=None)], 'Can\'t find field "title"'),
        ([article(id=["1"])], 'Field "id" must be of type String'),
        ([article(type="hologram")], 'type "hologram" is unsupported for the inline query result'),
        ([article(input_message_content={"message_text": ""})], "Input message content is not specified"),
        ([article(text="I <3 you")], "Can't parse inline query result: can't parse entities"),
        ([article(text="<b>open")], "can't parse entities"),
        ([article(rid="")], "RESULT_ID_INVALID"),
        ([article(rid="x" * 65)], "RESULT_ID_INVALID"),
        ([article(rid="键" * 22)], "RESULT_ID_INVALID"),  # 66 bytes
        ([article("a"), article("a")], "RESULT_ID_DUPLICATE"),
        ([article(title=" ")], "ARTICLE_TITLE_EMPTY"),
        ([article(text="<b> </b>")], "MESSAGE_EMPTY"),
        ([article(text="x" * 4097)], "MESSAGE_TOO_LONG"),
        ([article(reply_markup={"keyboard": [["k"]]})], "inline keyboard expected"),
        ([article(reply_markup={"inline_keyboard": [[{"text": "b"}]]})], "Text buttons are unallowed"),
        (
            [article(reply_markup={"inline_keyboard": [[{"text": "b", "callback_data": "x" * 65}]]})],
            "BUTTON_DATA_INVALID",
        ),
        ([article(reply_markup={"inline_keyboard": [[{"text": "b", "url": "ftp://x.y"}]]})], "URL protocol"),
    ],
)
async def test_answer_results_are_refused_as_telegram_refuses_them(
    inline: Emulator, results: Any, description: str
) -> None:
    qid = await inline.inline_query(USER, "steam")
    e = await refused(inline, "answerInlineQuery", inline_query_id=qid, results=results)
    assert e.code == 400 and description in e.description
    assert qid not in inline.inline_answers
    await answer(inline, qid, results=[article()])  # a refused answer leaves the query open


async def test_fifty_results_of_64_byte_ids_and_4096_characters_fit(inline: Emulator) -> None:
    qid = await inline.inline_query(USER, "steam")
    results = [article(f"{i:02d}" + "x" * 62, text="&amp;" * 4096) for i in range(50)]
    await answer(inline, qid, results=results, next_offset="o" * 64, cache_time=10**6, is_personal=True)
    got = await inline.inline_answer(qid)
    assert len(got["results"]) == 50 and got["results"][0]["text"] == "&" * 4096
    assert (got["cache_time"], got["is_personal"], got["next_offset"]) == (86400, True, "o" * 64)


async def test_next_offset_is_at_most_64_bytes(inline: Emulator) -> None:
    qid = await inline.inline_query(USER, "steam")
    e = await refused(inline, "answerInlineQuery", inline_query_id=qid, results=[], next_offset="键" * 22)
    assert e.description == "Bad Request: NEXT_OFFSET_INVALID"


@pytest.mark.parametrize(
    ("params", "description"),
    [
        ({"button": "x"}, "InlineQueryResultsButton must be an Object"),
        ({"button": {"start_parameter": "s"}}, 'Can\'t find field "text"'),
        ({"button": {"text": "Open"}}, "must have exactly one optional field"),
        ({"button": {"text": "", "start_parameter": "s"}}, "SWITCH_PM_TEXT_EMPTY"),
        ({"button": {"text": "Open", "start_parameter": ""}}, "START_PARAM_EMPTY"),
        ({"button": {"text": "Open", "start_parameter": "has space"}}, "START_PARAM_INVALID"),
        ({"button": {"text": "Open", "start_parameter": "x" * 65}}, "START_PARAM_INVALID"),
        ({"switch_pm_text": "Open", "switch_pm_parameter": "bad!"}, "START_PARAM_INVALID"),
        ({"button": {"text": "Open", "web_app": {"url": "http://x.y"}}}, "SWITCH_WEBVIEW_URL_INVALID"),
    ],
)
async def test_the_button_above_the_results_follows_telegrams_rules(
    inline: Emulator, params: dict[str, Any], description: str
) -> None:
    qid = await inline.inline_query(USER, "steam")
    e = await refused(inline, "answerInlineQuery", inline_query_id=qid, results=[], **params)
    assert description in e.description


async def test_a_start_or_web_app_button_is_kept_with_the_answer(inline: Emulator) -> None:
    qid = await inline.inline_query(USER, "")
    button = {"text": "Open the shop", "start_parameter": "rAbCdEfGhIj"}
    await answer(inline, qid, results=[], button=button)
    assert (await inline.inline_answer(qid))["button"] == button
    qid = await inline.inline_query(USER, "")
    await answer(inline, qid, button={"text": "App", "web_app": {"url": "https://example.com/app"}})
    assert (await inline.inline_answer(qid))["button"]["web_app"] == {"url": "https://example.com/app"}


async def test_a_chosen_result_is_posted_as_the_users_message_via_the_bot(inline: Emulator) -> None:
    qid = await inline.inline_query(USER, "steam", chat=inline.chats[GROUP])
    await answer(inline, qid, results=[article("p1", reply_markup=BUY), article("p2")])
    posted = await inline.choose(USER, qid, "p1")
    msg = posted.message
    assert msg["chat"]["id"] == GROUP and msg["from"]["id"] == USER
    bot = {"id": inline.bot_id, "is_bot": True, "first_name": "keyshop", "username": inline.bot_username}
    assert msg["via_bot"] == bot
    assert posted.text == "Steam 10" and msg["entities"][0]["type"] == "bold"
    assert posted.button("Buy")["url"].endswith("?start=rAbCdEfGhIj_p1")
    assert inline.history(GROUP)[-1] is msg and inline.messages(GROUP) == []  # the user's, not the bot's
    assert not [u for u in inline._updates if "message" in u or "chosen_inline_result" in u]  # feedback off
    with pytest.raises(ValueError, match="only the user"):
        await inline.choose(FRIEND, qid, "p1")
    with pytest.raises(LookupError):
        await inline.choose(USER, qid, "p9")
    unanswered = await inline.inline_query(USER, "x")
    with pytest.raises(ValueError, match="not answered"):
        await inline.choose(USER, unanswered, "p1")


async def test_with_inline_feedback_the_bot_learns_the_chosen_result(inline: Emulator) -> None:
    inline.inline_feedback = True
    qid = await inline.inline_query(USER, "steam", chat=inline.chats[GROUP])
    await answer(inline, qid, results=[article("p1", reply_markup=BUY), article("p2")])
    await inline.choose(USER, qid, "p1")
    await inline.choose(USER, qid, "p2")
    with_keyboard, plain = [u["chosen_inline_result"] for u in inline._updates[-2:]]
    assert with_keyboard["result_id"] == "p1" and with_keyboard["query"] == "steam"
    assert with_keyboard["from"]["id"] == USER and with_keyboard["inline_message_id"]
    assert "inline_message_id" not in plain  # only a message with an inline keyboard can be edited later


async def test_a_result_chosen_in_the_bots_own_chat_reaches_the_bot_and_one_to_a_friend_does_not(
    inline: Emulator,
) -> None:
    own = await inline.inline_query(USER, "steam")
    to_friend = await inline.inline_query(USER, "steam", to_user=FRIEND)
    for qid in (own, to_friend):
        await answer(inline, qid, results=[article()])
    await inline.choose(USER, own, "p1")
    update = inline._updates[-1]["message"]
    assert update["chat"]["id"] == USER and update["via_bot"]["id"] == inline.bot_id
    before = len(inline._updates)
    seen = await inline.choose(USER, to_friend, "p1")
    assert len(inline._updates) == before and seen.message["_seen_by"] == [USER, FRIEND]
    assert seen.message["chat"]["id"] == USER and seen.message["via_bot"]["id"] == inline.bot_id
