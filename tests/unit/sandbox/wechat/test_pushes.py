"""Pushes to the shop's callback: signed, in each encryption mode, with WeChat's timeout and retries, and what
the user sees of each answer."""

from __future__ import annotations

import pytest
from wechatpy.events import ClickEvent, ScanEvent, SubscribeScanEvent, UnsubscribeEvent
from wechatpy.messages import TextMessage

from sandbox.wechat import NOTICE, Emulator
from tests.unit.sandbox.wechat.conftest import FAN, Callback


@pytest.mark.parametrize("mode", ["plain", "compat", "safe"])
async def test_a_text_round_trips_in_every_mode(emu: Emulator, callback: Callback, mode: str) -> None:
    emu.mode = mode
    emu.follower(FAN)
    push = await emu.send_text(FAN, "你好 <b>&")
    assert (push.attempts, push.seen, push.failed) == (1, "echo: 你好 <b>&", False)
    assert emu.texts(FAN) == ["echo: 你好 <b>&"]
    msg = callback.messages[0]
    assert isinstance(msg, TextMessage) and msg.source == FAN and msg.target == emu.account_id and msg.id
    query, body = callback.queries[0], callback.bodies[0]
    assert ("encrypt_type" in query) == (mode != "plain")
    assert ("<Encrypt>" in body) == (mode != "plain")
    assert ("<Content>" in body) == (mode != "safe")


async def test_the_shop_may_answer_in_plaintext_in_compatible_mode_but_not_in_safe_mode(
    emu: Emulator, callback: Callback
) -> None:
    emu.follower(FAN)
    callback.behaviour = "plaintext"
    emu.mode = "compat"
    assert (await emu.send_text(FAN, "a")).seen == "echo: a"
    emu.mode = "safe"
    push = await emu.send_text(FAN, "b")
    assert (push.attempts, push.seen, push.failed) == (3, NOTICE, True)


async def test_events_carry_the_key_and_the_scene(emu: Emulator, callback: Callback) -> None:
    emu.mode = "safe"
    assert (await emu.subscribe(FAN, scene="ref:ab12")).seen == "event: subscribe_scan"
    await emu.scan(FAN, "ref:cd34")
    await emu.click(FAN, "CATALOG")
    await emu.unsubscribe(FAN)
    follow, scan, click, leave = callback.messages
    assert isinstance(follow, SubscribeScanEvent) and follow.scene_id == "ref:ab12"
    assert isinstance(scan, ScanEvent) and scan.scene_id == "ref:cd34"
    assert isinstance(click, ClickEvent) and click.key == "CATALOG"
    assert isinstance(leave, UnsubscribeEvent)
    # nothing of the reply to an unfollow reaches the user
    assert emu.texts(FAN) == ["event: subscribe_scan", "event: scan", "event: click"]


async def test_only_followers_write_tap_or_scan(emu: Emulator, callback: Callback) -> None:
    with pytest.raises(ValueError, match="does not follow"):
        await emu.send_text(FAN, "hi")
    assert callback.messages == []


async def test_a_hanging_shop_gets_three_attempts_of_the_same_message_then_the_user_sees_the_notice(
    emu: Emulator, callback: Callback
) -> None:
    emu.follower(FAN)
    callback.behaviour = "hang"
    push = await emu.send_text(FAN, "hi")
    assert (push.attempts, push.seen, push.failed) == (3, NOTICE, True)
    assert len({(m.id, m.create_time) for m in callback.messages}) == 1 and len(callback.messages) == 3
    assert emu.texts(FAN) == [NOTICE]


async def test_an_invalid_reply_is_retried_and_ends_in_the_notice(emu: Emulator, callback: Callback) -> None:
    emu.follower(FAN)
    callback.behaviour = "garbage"
    push = await emu.click(FAN, "X")
    assert (push.attempts, push.failed) == (3, True)
    assert emu.texts(FAN) == [NOTICE]


async def test_success_shows_the_user_nothing(emu: Emulator, callback: Callback) -> None:
    emu.follower(FAN)
    callback.behaviour = "success"
    push = await emu.send_text(FAN, "hi")
    assert (push.attempts, push.seen, push.failed) == (1, None, False)
    assert emu.texts(FAN) == []


async def test_the_server_check_echoes_echostr(emu: Emulator, callback: Callback) -> None:
    assert await emu.verify_server()
    emu.token = "another"
    assert not await emu.verify_server()
