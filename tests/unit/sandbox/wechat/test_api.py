"""The API the shop calls, over HTTP: tokens, customer-service and template messages with their windows and
limits, the menu, QR codes, OAuth and the daily quotas. Every answer is WeChat's JSON."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.wechat import Emulator
from sandbox.wechat.players import Players
from tests.unit.sandbox.wechat.conftest import FAN, Api


def opened(emu: Emulator, kind: str, openid: str = FAN) -> None:
    """``openid`` follows and has just opened a window (without a push: no callback needed)."""
    emu.follower(openid)
    emu.open_window(openid, kind)


async def test_stable_token_is_the_same_for_every_caller_until_it_expires(api: Api, emu: Emulator) -> None:
    first, second = await api.token(), await api.token()
    assert first == second
    emu.expire_token()
    assert (await api.custom(first, FAN, "x"))["errcode"] == 42001
    assert await api.token() != first


async def test_stable_token_is_renewed_in_its_last_five_minutes_and_the_old_one_works_until_it_expires(
    api: Api, emu: Emulator
) -> None:
    opened(emu, "payment")
    old = await api.token()
    emu.advance(7200 - 301)
    assert await api.token() == old
    emu.advance(2)  # 299 s left: the next call gets the next token, every caller the same one
    new = await api.token()
    assert new != old and await api.token() == new
    assert (await api.custom(old, FAN, "x"))["errcode"] == 0
    emu.advance(299)
    assert (await api.custom(old, FAN, "x"))["errcode"] == 42001
    assert (await api.custom(new, FAN, "x"))["errcode"] == 0


async def test_a_token_lives_token_ttl_seconds(api: Api, emu: Emulator) -> None:
    emu.token_ttl = 60
    token = await api.token()
    opened(emu, "message")
    emu.advance(59)
    assert (await api.custom(token, FAN, "x"))["errcode"] == 0
    emu.advance(1)
    assert (await api.custom(token, FAN, "x"))["errcode"] == 42001


async def test_force_refresh_invalidates_the_old_token_and_is_limited_a_day(api: Api, emu: Emulator) -> None:
    emu.force_refresh_per_day = 2
    old = await api.token()
    new = await api.token(force=True)
    assert new != old
    assert (await api.custom(old, FAN, "x"))["errcode"] == 40001
    await api.token(force=True)
    body = {
        "grant_type": "client_credential",
        "appid": emu.appid,
        "secret": emu.secret,
        "force_refresh": True,
    }
    assert (await api.post("/cgi-bin/stable_token", body))["errcode"] == 45009


async def test_the_legacy_token_invalidates_its_predecessor_after_the_overlap(
    api: Api, emu: Emulator
) -> None:
    opened(emu, "payment")
    first = await api.legacy()
    second = await api.legacy()
    assert (await api.custom(first, FAN, "x"))["errcode"] == 0  # still in the overlap
    emu.advance(emu.legacy_overlap)
    assert (await api.custom(first, FAN, "x"))["errcode"] == 40001
    assert (await api.custom(second, FAN, "x"))["errcode"] == 0


async def test_wrong_credentials_and_missing_tokens_are_refused(api: Api, emu: Emulator) -> None:
    body = {"grant_type": "client_credential", "appid": emu.appid, "secret": "nope"}
    assert (await api.post("/cgi-bin/stable_token", body))["errcode"] == 40125
    assert (await api.post("/cgi-bin/stable_token", {**body, "appid": "wxother"}))["errcode"] == 40013
    assert (await api.post("/cgi-bin/message/custom/send", {}))["errcode"] == 41001
    assert (await api.custom("forged", FAN, "x"))["errcode"] == 40001


async def test_custom_send_delivers_text_and_answers_ok(api: Api, emu: Emulator) -> None:
    opened(emu, "message")
    assert await api.custom(await api.token(), FAN, "你的卡密") == {"errcode": 0, "errmsg": "ok"}
    [got] = emu.received(FAN)
    assert (got.via, got.text) == ("custom", "你的卡密")


async def test_custom_send_outside_the_window_is_45015(api: Api, emu: Emulator) -> None:
    token = await api.token()
    emu.follower(FAN)
    assert (await api.custom(token, FAN, "x"))["errcode"] == 45015
    opened(emu, "message")
    emu.advance(48 * 3600)
    assert (await api.custom(await api.token(), FAN, "x"))["errcode"] == 45015
    assert emu.received(FAN) == []


async def test_five_messages_after_a_user_message_then_45047(api: Api, emu: Emulator) -> None:
    token = await api.token()
    opened(emu, "message")
    answers = [(await api.custom(token, FAN, str(i)))["errcode"] for i in range(6)]
    assert answers == [0, 0, 0, 0, 0, 45047]
    emu.open_window(FAN, "message")  # the user writes again
    assert (await api.custom(token, FAN, "again"))["errcode"] == 0


async def test_three_messages_within_a_minute_after_a_tap_follow_or_scan(api: Api, emu: Emulator) -> None:
    token = await api.token()
    opened(emu, "event")
    answers = [(await api.custom(token, FAN, str(i)))["errcode"] for i in range(4)]
    assert answers == [0, 0, 0, 45047]
    opened(emu, "event", "o_other")
    emu.advance(60)
    assert (await api.custom(token, "o_other", "late"))["errcode"] == 45015


async def test_a_payment_opens_48_hours_without_a_count(api: Api, emu: Emulator) -> None:
    token = await api.token()
    emu.follower(FAN)
    emu.record_payment(FAN)
    assert {(await api.custom(token, FAN, str(i)))["errcode"] for i in range(8)} == {0}
    emu.advance(48 * 3600)
    assert (await api.custom(await api.token(), FAN, "x"))["errcode"] == 45015


async def test_an_unfollowed_user_gets_nothing(api: Api, emu: Emulator, monkeypatch: Any) -> None:
    token = await api.token()
    opened(emu, "message")

    async def no_push(self: Players, openid: str, fields: dict[str, str]) -> None:
        return None

    monkeypatch.setattr(Players, "_push", no_push)
    await emu.unsubscribe(FAN)
    assert (await api.custom(token, FAN, "x"))["errcode"] == 45015
    body = {"touser": FAN, "template_id": "T1", "data": {"k": {"value": "v"}}}
    assert (await api.post("/cgi-bin/message/template/send", body, access_token=token))["errcode"] == 43004


async def test_custom_text_is_at_most_2048_bytes_and_text_only(api: Api, emu: Emulator) -> None:
    token = await api.token()
    opened(emu, "payment")
    assert (await api.custom(token, FAN, "a" * 2048))["errcode"] == 0
    assert (await api.custom(token, FAN, "卡" * 683))["errcode"] == 45002  # 2049 bytes
    image = {"touser": FAN, "msgtype": "image", "image": {"media_id": "m"}}
    assert (await api.post("/cgi-bin/message/custom/send", image, access_token=token))["errcode"] == 40008
    assert (await api.custom(token, "o_stranger", "x"))["errcode"] == 40003


@pytest.mark.parametrize(
    ("value", "errcode"),
    [("二十个字符以内的值", 0), ("x" * 20, 0), ("x" * 21, 47003), ("two\nlines", 47003), ("", 47003)],
)
async def test_template_fields_are_at_most_20_characters_on_one_line(
    api: Api, emu: Emulator, value: str, errcode: int
) -> None:
    emu.follower(FAN)  # no window needed
    body = {
        "touser": FAN,
        "template_id": "T1",
        "url": "https://shop/o/1",
        "data": {"thing1": {"value": value}},
    }
    answer = await api.post("/cgi-bin/message/template/send", body, access_token=await api.token())
    assert answer["errcode"] == errcode
    if errcode == 0:
        [got] = emu.received(FAN)
        assert (got.via, got.template_id, got.data, got.url) == (
            "template",
            "T1",
            {"thing1": value},
            body["url"],
        )
    else:
        assert "thing1" in answer["errmsg"] or value == ""


async def test_template_ids_are_checked_when_the_account_has_a_list(api: Api, emu: Emulator) -> None:
    emu.follower(FAN)
    emu.templates = {"T1"}
    body = {"touser": FAN, "template_id": "T9", "data": {"k": {"value": "v"}}}
    assert (await api.post("/cgi-bin/message/template/send", body, access_token=await api.token()))[
        "errcode"
    ] == 40037


def button(name: str = "商品", key: str = "CATALOG") -> dict[str, Any]:
    return {"type": "click", "name": name, "key": key}


@pytest.mark.parametrize(
    ("menu", "errcode"),
    [
        ({"button": [button(), {"name": "更多", "sub_button": [button("订单", "ORDERS")]}]}, 0),
        ({"button": []}, 40016),
        ({"button": [button()] * 4}, 40016),
        ({"button": [{"name": "更多", "sub_button": [button()] * 6}]}, 40023),
        ({"button": [{"name": "更多", "sub_button": []}]}, 40023),
        ({"button": [button(name="一二三四五六")]}, 40018),  # 18 bytes
        ({"button": [{"type": "dance", "name": "x", "key": "k"}]}, 40017),
        ({"button": [button(key="")]}, 40019),
        ({"button": [{"type": "view", "name": "x"}]}, 40020),
    ],
)
async def test_menus_are_validated(api: Api, emu: Emulator, menu: dict[str, Any], errcode: int) -> None:
    answer = await api.post("/cgi-bin/menu/create", menu, access_token=await api.token())
    assert answer["errcode"] == errcode
    assert (emu.menu == menu["button"]) == (errcode == 0)


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ({"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "ref:ab12"}}}, True),
        (
            {
                "action_name": "QR_STR_SCENE",
                "expire_seconds": 2_592_000,
                "action_info": {"scene": {"scene_str": "s"}},
            },
            True,
        ),
        (
            {
                "action_name": "QR_STR_SCENE",
                "expire_seconds": 2_592_001,
                "action_info": {"scene": {"scene_str": "s"}},
            },
            False,
        ),
        ({"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "x" * 65}}}, False),
        ({"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": ""}}}, False),
        ({"action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 1}}}, False),
    ],
)
async def test_qr_codes_carry_a_string_scene(api: Api, emu: Emulator, body: dict[str, Any], ok: bool) -> None:
    answer = await api.post("/cgi-bin/qrcode/create", body, access_token=await api.token())
    if not ok:
        assert answer["errcode"] == 40097
        return
    assert answer["url"].startswith("http://weixin.qq.com/q/")
    assert emu.scene_of(answer["ticket"]) == body["action_info"]["scene"]["scene_str"]
    assert answer.get("expire_seconds") == body.get("expire_seconds")
    if "expire_seconds" in body:
        emu.advance(body["expire_seconds"])
        assert emu.scene_of(answer["ticket"]) is None


async def test_oauth_gives_the_openid_of_a_code_once(api: Api, emu: Emulator) -> None:
    code = emu.oauth_code(FAN)
    q = {"appid": emu.appid, "secret": emu.secret, "grant_type": "authorization_code"}
    answer = await api.get("/sns/oauth2/access_token", code=code, **q)
    assert (answer["openid"], answer["scope"]) == (FAN, "snsapi_base")
    assert (await api.get("/sns/oauth2/access_token", code=code, **q))["errcode"] == 40163
    assert (await api.get("/sns/oauth2/access_token", code="made-up", **q))["errcode"] == 40029
    late = emu.oauth_code(FAN)
    emu.advance(emu.oauth_code_ttl)
    assert (await api.get("/sns/oauth2/access_token", code=late, **q))["errcode"] == 40029


async def test_each_endpoint_has_a_daily_quota(api: Api, emu: Emulator) -> None:
    emu.daily_quotas["/cgi-bin/message/custom/send"] = 2
    token = await api.token()
    opened(emu, "payment")
    answers = [(await api.custom(token, FAN, str(i)))["errcode"] for i in range(3)]
    assert answers == [0, 0, 45009]
    assert (await api.post("/cgi-bin/menu/create", {"button": [button()]}, access_token=token))[
        "errcode"
    ] == 0
    emu.token_ttl = 2 * 86400
    emu.record_payment(FAN)
    token = await api.token(force=True)
    emu.advance(86400)
    emu.record_payment(FAN)
    assert (await api.custom(token, FAN, "tomorrow"))["errcode"] == 0
