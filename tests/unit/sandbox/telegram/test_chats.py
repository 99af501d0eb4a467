"""Private chats, groups, supergroups, channels and anonymous admins; whom the bot may write to; flood."""

from __future__ import annotations

import pytest

from sandbox.telegram import GROUP_ANONYMOUS_BOT, Emulator
from tests.unit.sandbox.telegram.conftest import USER, call, refused

GROUP, CHANNEL = -1001, -1002


async def test_a_member_writes_in_a_group_and_the_update_says_where(emu: Emulator) -> None:
    group = emu.group(GROUP, "Shoppers", members=[USER])
    await emu.send_text(USER, "/start", chat=group)
    msg = emu._updates[-1]["message"]
    assert msg["chat"] == {"id": GROUP, "type": "supergroup", "title": "Shoppers"}
    assert msg["from"]["id"] == USER and msg["entities"][0]["type"] == "bot_command"
    with pytest.raises(ValueError, match="not a member"):
        await emu.send_text(99, "hi", chat=group)


@pytest.mark.parametrize("kind", ["group", "supergroup"])
async def test_an_anonymous_admin_posts_as_group_anonymous_bot_with_the_group_as_sender_chat(
    emu: Emulator, kind: str
) -> None:
    group = emu.group(GROUP, "Shop", type=kind)
    await emu.send_anonymous(group, "/start")
    msg = emu._updates[-1]["message"]
    assert msg["from"] == GROUP_ANONYMOUS_BOT and msg["from"]["id"] == 1087968824 and msg["from"]["is_bot"]
    assert msg["sender_chat"] == {"id": GROUP, "type": kind, "title": "Shop"}


async def test_a_channel_post_is_a_channel_post_update_without_from(emu: Emulator) -> None:
    channel = emu.channel(CHANNEL, "News")
    await emu.channel_post(channel, "hello")
    update = emu._updates[-1]
    assert "message" not in update and "from" not in update["channel_post"]
    assert update["channel_post"]["chat"]["type"] == "channel"
    assert update["channel_post"]["sender_chat"]["id"] == CHANNEL


async def test_the_bot_writes_in_groups_and_channels_it_is_in(emu: Emulator) -> None:
    emu.group(GROUP, "Shop", members=[USER])
    emu.channel(CHANNEL, "News", username="keyshop_news")
    in_group = await call(emu, "sendMessage", chat_id=GROUP, text="hi all")
    assert in_group["chat"]["type"] == "supergroup" and in_group["from"]["is_bot"]
    in_channel = await call(emu, "sendMessage", chat_id="@keyshop_news", text="news")
    assert "from" not in in_channel and in_channel["sender_chat"]["id"] == CHANNEL
    assert [s.text for s in emu.messages(GROUP)] == ["hi all"]


@pytest.mark.parametrize(
    ("kind", "words"),
    [("group", "group chat"), ("supergroup", "supergroup chat"), ("channel", "channel chat")],
)
async def test_sending_to_a_chat_the_bot_is_not_in_is_forbidden(emu: Emulator, kind: str, words: str) -> None:
    emu.group(GROUP, "Elsewhere", type=kind, bot_is_member=False)
    e = await refused(emu, "sendMessage", chat_id=GROUP, text="hi")
    assert e.code == 403 and e.description == f"Forbidden: bot is not a member of the {words}"


async def test_sending_to_an_unknown_chat_is_chat_not_found(emu: Emulator) -> None:
    for chat_id in (99, -99, "@nobody", "abc"):
        e = await refused(emu, "sendMessage", chat_id=chat_id, text="hi")
        assert e.code == 400 and e.description == "Bad Request: chat not found"


async def test_the_bot_cannot_write_first_to_a_user_who_never_started_it(emu: Emulator) -> None:
    emu.user(5, "Shy", started=False)
    e = await refused(emu, "sendMessage", chat_id=5, text="hi")
    assert e.code == 403 and "bot can't initiate conversation with a user" in e.description
    await emu.send_text(5, "/start")
    await call(emu, "sendMessage", chat_id=5, text="hi")


async def test_a_user_who_blocked_the_bot_gets_403(emu: Emulator) -> None:
    emu.block(USER)
    e = await refused(emu, "sendMessage", chat_id=USER, text="hi")
    assert e.code == 403 and e.description == "Forbidden: bot was blocked by the user"


async def test_contact_requests_are_for_private_chats_only(emu: Emulator) -> None:
    emu.group(GROUP, "Shop")
    markup = {"keyboard": [[{"text": "Share", "request_contact": True}]]}
    e = await refused(emu, "sendMessage", chat_id=GROUP, text="phone?", reply_markup=markup)
    assert "private chats only" in e.description


async def test_flood_limits_are_on_by_default() -> None:
    emu = Emulator()
    assert emu.flood_limits and (emu.per_chat_rate, emu.global_rate) == (1.0, 30.0)
    assert emu.group_rate == pytest.approx(20 / 60)


async def test_a_private_chat_gets_one_message_a_second_after_a_short_burst() -> None:
    emu = Emulator(per_chat_rate=1.0, per_chat_burst=3.0)
    emu.user(USER)
    for _ in range(3):
        await call(emu, "sendMessage", chat_id=USER, text="hi")
    e = await refused(emu, "sendMessage", chat_id=USER, text="hi")
    assert e.code == 429 and e.retry_after == 1 and e.description == "Too Many Requests: retry after 1"


async def test_a_group_gets_at_most_20_messages_a_minute() -> None:
    emu = Emulator(per_chat_burst=100)  # only the group limit is in play
    emu.group(GROUP, "Shop")
    for _ in range(20):
        await call(emu, "sendMessage", chat_id=GROUP, text="hi")
    e = await refused(emu, "sendMessage", chat_id=GROUP, text="hi")
    assert e.code == 429 and e.retry_after == 3  # one more message every 3 s


async def test_the_bot_sends_at_most_30_messages_a_second_overall() -> None:
    emu = Emulator()
    for uid in range(1, 32):
        emu.user(uid)
    for uid in range(1, 31):
        await call(emu, "sendMessage", chat_id=uid, text="hi")
    e = await refused(emu, "sendMessage", chat_id=31, text="hi")
    assert e.code == 429 and e.retry_after == 1


async def test_a_refused_message_does_not_use_up_the_allowance(emu: Emulator) -> None:
    emu.flood_limits = True
    emu.per_chat_burst = 1.0
    await call(emu, "sendMessage", chat_id=USER, text="hi")
    await refused(emu, "sendMessage", chat_id=USER, text="hi")
    assert emu._global.tokens > emu.global_rate - 2  # the refused one took nothing from the global bucket


async def test_the_bot_added_to_a_group_hears_of_it_and_may_write_there(emu: Emulator) -> None:
    group = emu.group(GROUP, "Shop", members=[USER], admins=[9], bot_is_member=False)
    await emu.send_text(USER, "/share 1", chat=group)
    assert not emu._updates  # the bot is not there: it hears nothing
    with pytest.raises(ValueError, match="can't add"):
        await emu.add_bot(group, by=99)
    await emu.add_bot(group, by=USER)
    status, service = emu._updates[-2]["my_chat_member"], emu._updates[-1]["message"]
    assert (status["old_chat_member"]["status"], status["new_chat_member"]["status"]) == ("left", "member")
    assert status["new_chat_member"]["user"]["id"] == emu.bot_id and status["from"]["id"] == USER
    assert service["new_chat_members"][0]["id"] == emu.bot_id
    await call(emu, "sendMessage", chat_id=GROUP, text="hello")


async def test_a_bot_removed_from_a_group_may_no_longer_write_there(emu: Emulator) -> None:
    group = emu.group(GROUP, "Shop", members=[USER], admins=[9])
    with pytest.raises(ValueError, match="not an admin"):
        await emu.remove_bot(group, by=USER)
    await emu.remove_bot(group, by=9)
    assert emu._updates[-1]["my_chat_member"]["new_chat_member"]["status"] == "kicked"
    e = await refused(emu, "sendMessage", chat_id=GROUP, text="hi")
    assert (e.code, e.description) == (403, "Forbidden: bot is not a member of the supergroup chat")


async def test_a_bot_added_to_a_channel_is_its_administrator(emu: Emulator) -> None:
    channel = emu.channel(CHANNEL, "News", admins=[USER], bot_is_member=False)
    await emu.add_bot(channel, by=USER)
    member = emu._updates[-1]["my_chat_member"]["new_chat_member"]
    assert member["status"] == "administrator" and member["can_post_messages"]
    assert len(emu._updates) == 1  # no service message in a channel


async def test_people_join_and_leave_and_the_bot_sees_the_service_messages(emu: Emulator) -> None:
    group = emu.group(GROUP, "Shop")
    await emu.join(group, 5)
    assert 5 in group.members and emu._updates[-1]["message"]["new_chat_members"][0]["id"] == 5
    await emu.send_text(5, "hi", chat=group)
    await emu.leave(group, 5)
    assert 5 not in group.members and emu._updates[-1]["message"]["left_chat_member"]["id"] == 5
    with pytest.raises(ValueError, match="not a member"):
        await emu.send_text(5, "hi", chat=group)


@pytest.mark.parametrize(
    ("url", "text"),
    [
        ("https://t.me/keyshop_sandbox_bot?start=rAbCdEfGhIj_p7", "/start rAbCdEfGhIj_p7"),
        ("tg://resolve?domain=keyshop_sandbox_bot&start=abc", "/start abc"),
        ("https://t.me/KEYSHOP_SANDBOX_BOT", "/start"),
        ("https://t.me/keyshop_sandbox_bot?start=has+space", "/start"),  # clients drop a bad payload
        ("https://t.me/keyshop_sandbox_bot?start=" + "x" * 65, "/start"),
    ],
)
async def test_opening_a_link_to_the_bot_sends_start_with_its_payload_in_private(
    emu: Emulator, url: str, text: str
) -> None:
    emu.user(5, "New", started=False)
    emu.block(5)
    await emu.open_link(5, url)
    msg = emu._updates[-1]["message"]
    assert msg["chat"] == {"id": 5, "type": "private", "first_name": "New"} and msg["text"] == text
    assert msg["entities"][0] == {"type": "bot_command", "offset": 0, "length": 6}
    await call(emu, "sendMessage", chat_id=5, text="welcome")  # started, and no longer blocked


async def test_only_links_to_this_bot_open_its_chat(emu: Emulator) -> None:
    for url in ("https://t.me/another_bot?start=x", "https://example.com/?start=x", "tg://msg?text=x"):
        with pytest.raises(ValueError):
            await emu.open_link(USER, url)


async def test_the_emulator_counts_the_429s_its_flood_limits_answer() -> None:
    emu = Emulator(per_chat_burst=100)
    emu.group(GROUP, "Shop")
    emu.fail_next("sendMessage", 429, retry_after=7)
    await refused(emu, "sendMessage", chat_id=GROUP, text="injected")
    assert emu.flood_refusals == []  # injected faults are not Telegram's limits
    for _ in range(20):
        await call(emu, "sendMessage", chat_id=GROUP, text="hi")
    await refused(emu, "sendMessage", chat_id=GROUP, text="one too many")
    assert emu.flood_refusals == [(GROUP, 3)]


async def test_a_reply_to_a_message_that_is_gone_is_refused_unless_sent_without_reply(emu: Emulator) -> None:
    group = emu.group(GROUP, "Shop", members=[USER])
    kept = (await emu.send_text(USER, "/start", chat=group))["message"]["message_id"]
    gone = (await emu.send_text(USER, "/withdraw", chat=group, deleted=True))["message"]
    assert "_deleted" not in gone  # the bot got the update before the message went
    replied = await call(emu, "sendMessage", chat_id=GROUP, text="a", reply_parameters={"message_id": kept})
    assert replied["reply_to_message"]["text"] == "/start"
    for params in ({"reply_parameters": {"message_id": gone["message_id"]}}, {"reply_to_message_id": 999}):
        e = await refused(emu, "sendMessage", chat_id=GROUP, text="b", **params)
        assert e.description == "Bad Request: message to be replied not found"
    without = {"message_id": gone["message_id"], "allow_sending_without_reply": True}
    plain = await call(emu, "sendMessage", chat_id=GROUP, text="c", reply_parameters=without)
    assert "reply_to_message" not in plain
    assert [s.text for s in emu.messages(GROUP)] == ["a", "c"]


async def test_a_bot_restricted_in_a_group_gets_its_messages_but_may_not_send_text(emu: Emulator) -> None:
    group = emu.group(GROUP, "Night mode", members=[USER])
    group.bot_can_post = False
    await emu.send_text(USER, "/start", chat=group)
    assert emu._updates[-1]["message"]["chat"]["id"] == GROUP
    e = await refused(emu, "sendMessage", chat_id=GROUP, text="hi")
    assert e.code == 400
    assert e.description == "Bad Request: not enough rights to send text messages to the chat"
    assert emu.messages(GROUP) == []
