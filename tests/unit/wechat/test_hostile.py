"""Hostile pushes and hostile data: what WeChat would refuse to show must never leave the callback
(broken reply XML, over-long passive replies), and bodies that arrive in pieces are read whole."""

from __future__ import annotations

import asyncio
import time

import pytest
import xmltodict
from aiohttp import streams, web
from aiohttp.test_utils import make_mocked_request

from bot.i18n import compile_catalogs
from core.services import Services
from handlers.wechat import WechatConfig
from handlers.wechat.callback import WechatCallback
from tests.conftest import stocked
from tests.unit.wechat.conftest import APP_ID, TOKEN, Account, reply_text, sign

PASSIVE_MAX_BYTES = 2048  # WeChat cuts (or refuses) a passive text reply beyond this


async def test_a_product_name_with_a_cdata_end_still_makes_a_well_formed_reply(
    account: Account, shop: Services
) -> None:
    await stocked(shop, 2, name="Key ]]> <b>&amp;</b>", description="x]]>y")
    text = await account.say("o-a", "catalog")  # reply_text parses the reply: broken XML fails here
    assert "Key ]]> <b>&amp;</b>" in text
    assert "x]]>y" in await account.say("o-a", "1")


async def test_control_characters_in_product_data_never_break_the_reply_xml(
    account: Account, shop: Services
) -> None:
    await stocked(shop, 2, name="Bad\x1bName\x08", description="line\x00\x08end\u200b")
    text = await account.say("o-a", "catalog")
    assert "BadName" in text
    card = await account.say("o-a", "1")
    assert "lineend" in card and "\u200b" in card  # an invisible but legal character is left alone


async def test_a_long_catalog_fits_one_passive_reply_and_its_numbers_still_choose(
    account: Account, shop: Services
) -> None:
    for i in range(30):
        await stocked(shop, 1, name=f"{i:02d}" + "商" * 62, price=100 + i)
    status, raw = await account.post(account.text("o-a", "商品"))
    assert status == 200 and len(raw.encode()) < 4096
    text = reply_text(raw)
    assert len(text.encode()) <= PASSIVE_MAX_BYTES
    assert "1. 00" in text
    listed = sum(1 for line in text.splitlines() if line[:1].isdigit())
    assert listed >= 5
    assert "00" + "商" * 62 in await account.say("o-a", "1")


async def test_a_long_description_is_cut_to_fit_one_passive_reply(account: Account, shop: Services) -> None:
    await stocked(shop, 3, name="Long", description="说明" * 999)
    await account.say("o-a", "catalog")
    card = await account.say("o-a", "1")
    assert len(card.encode()) <= PASSIVE_MAX_BYTES
    assert "Long" in card and "买" in card  # the name and how to buy survive the cut


async def test_a_body_arriving_in_two_pieces_is_read_whole(shop: Services) -> None:
    config = WechatConfig(APP_ID, TOKEN, None, compile_catalogs())
    callback = WechatCallback(shop, config)
    ts, nonce = str(int(time.time())), "n0nce"
    body = xmltodict.unparse(
        {
            "xml": {
                "ToUserName": "gh_x",
                "FromUserName": "o-split",
                "CreateTime": 1,
                "MsgType": "text",
                "Content": "help",
                "MsgId": 77,
            }
        },
        full_document=False,
    ).encode()
    loop = asyncio.get_running_loop()
    payload = streams.StreamReader(_Protocol(), 2**16, loop=loop)
    request = make_mocked_request(
        "POST",
        f"/wechat?timestamp={ts}&nonce={nonce}&signature={sign(TOKEN, ts, nonce)}",
        headers={"Content-Length": str(len(body))},
        payload=payload,
    )
    payload.feed_data(body[:40])
    answer = asyncio.create_task(callback.push(request))
    for _ in range(5):  # let the handler reach the body and read the first piece
        await asyncio.sleep(0)
    payload.feed_data(body[40:])
    payload.feed_eof()
    response = await answer
    assert isinstance(response, web.Response) and response.status == 200
    assert "<xml>" in str(response.text)


class _Protocol:
    """Enough of a protocol for a StreamReader fed by hand."""

    _reading_paused = False
    connected = True

    def pause_reading(self, *args: object, **kwargs: object) -> None:
        pass

    def resume_reading(self, *args: object, **kwargs: object) -> None:
        pass


async def test_a_sender_longer_than_an_external_id_gets_400_and_no_traceback(
    account: Account, shop: Services, caplog: pytest.LogCaptureFixture
) -> None:
    # users.external_id is 64 characters: PostgreSQL would fail the insert with a traceback in the log
    status, _ = await account.post(account.text("o" * 65, "help"))
    assert status == 400
    assert await shop.users.find("wechat", "o" * 65) is None
    assert not any(r.exc_info for r in caplog.records)
    assert (await account.post(account.text("o" * 64, "help")))[0] == 200


def test_fit_cuts_on_a_character_boundary_and_fit_lines_keeps_whole_lines() -> None:
    from handlers.wechat.texts import fit, fit_lines

    cut = fit("商" * 1000, 100)
    assert len(cut.encode()) <= 100 and cut.endswith("…") and cut.startswith("商" * 32)
    assert fit("short", 100) == "short"
    lines = [f"{i}. " + "单" * 80 for i in range(10)]  # long product names and more
    kept = fit_lines("📦 我的订单：", lines, "")
    assert kept == lines[: len(kept)] and 0 < len(kept) < 10
    assert len("\n".join(["📦 我的订单：", *kept]).encode()) <= 2048


@pytest.mark.parametrize("age", [-3600, 3600, 86_400 * 365])
async def test_a_signed_url_replayed_long_after_its_timestamp_is_refused(shop: Services, age: int) -> None:
    callback = WechatCallback(shop, WechatConfig(APP_ID, TOKEN, None, compile_catalogs()))
    ts, nonce = str(int(time.time()) - age), "n0nce"
    query = f"timestamp={ts}&nonce={nonce}&signature={sign(TOKEN, ts, nonce)}"
    check = await callback.verify(make_mocked_request("GET", f"/wechat?{query}&echostr=42"))
    assert check.status == 403
    body = b"<xml><FromUserName>o-late</FromUserName><MsgType>text</MsgType><Content>help</Content></xml>"
    loop = asyncio.get_running_loop()
    payload = streams.StreamReader(_Protocol(), 2**16, loop=loop)
    payload.feed_data(body)
    payload.feed_eof()
    request = make_mocked_request("POST", f"/wechat?{query}", payload=payload)
    assert (await callback.push(request)).status == 403
    assert await shop.users.find("wechat", "o-late") is None
