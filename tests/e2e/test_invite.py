"""/invite and invite links through the real bot, in English and Chinese: the link and its QR code (the
dashboard with the link's counts follows it), a new user attributed for good, and every refusal silent (a
plain welcome) and changing nothing."""

from __future__ import annotations

import asyncio
import re
import struct

import pytest

from core.services.catalog import ProductDraft
from sandbox.telegram import Sent
from tests.e2e.conftest import Shop

A, B, C, D = 701, 702, 703, 704

LANGS = {
    "en": {"welcome": "Welcome", "opened": "Opened: {}", "new": "New users: {}"},
    "zh-hans": {"welcome": "欢迎", "opened": "打开次数：{}", "new": "新用户：{}"},
}


def _link(sent: Sent) -> tuple[str, str]:
    """The deep link in an /invite answer and its start payload."""
    m = re.search(r"https://t\.me/(\w+)\?start=([A-Za-z0-9_-]+)", sent.text)
    assert m is not None, sent.text
    return m.group(0), m.group(2)


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


async def _invite(shop: Shop, user: int) -> tuple[Sent, str]:
    """/invite: the QR code photo with the link, then the dashboard (returned, with the link's payload)."""
    before = len(shop.emu.messages(user))
    sent = await shop.say(user, "/invite")
    assert sent.method == "sendPhoto"
    dashboard = await shop.emu.wait_for(user, after=before + 1)
    assert dashboard.method == "sendMessage"
    largest = sent.message["photo"][-1]
    png = shop.emu.files[largest["file_id"]][1]
    assert (largest["width"], largest["height"]) == _png_size(png)
    assert 100 <= largest["width"] <= 2000
    link, payload = _link(sent)
    assert link == f"https://t.me/{shop.emu.bot_username}?start={payload}"
    assert len(payload) <= 64 and str(user) not in payload
    return dashboard, payload


async def _referrer(shop: Shop, tg_id: int) -> int | None:
    user = await shop.services.users.find("telegram", str(tg_id))
    assert user is not None
    return user.referrer_id


async def _id(shop: Shop, tg_id: int) -> int:
    user = await shop.services.users.find("telegram", str(tg_id))
    assert user is not None
    return user.id


@pytest.fixture(params=list(LANGS))
def lang(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_invite_gives_a_link_and_a_qr_photo_and_a_newcomer_is_attributed(shop: Shop, lang: str) -> None:
    words = LANGS[lang]
    for who, name in ((A, "Ann"), (B, "Bob")):
        shop.emu.user(who, name, lang)
    sent, payload = await _invite(shop, A)
    assert words["opened"].format(0) in sent.text and words["new"].format(0) in sent.text
    assert (await _invite(shop, A))[1] == payload  # the same code every time

    welcome = await shop.say(B, f"/start {payload}")
    assert words["welcome"] in welcome.text
    assert await _referrer(shop, B) == await _id(shop, A)
    again, _ = await _invite(shop, A)
    assert words["opened"].format(1) in again.text and words["new"].format(1) in again.text
    assert "invite" in shop.emu.menu(A, lang)


async def test_refusals_are_silent_and_change_nothing(shop: Shop, lang: str) -> None:
    words = LANGS[lang]
    for who in (A, B, C, D):
        shop.emu.user(who, "Ann", lang)
    _, code_a = await _invite(shop, A)
    await shop.say(B, f"/start {code_a}")  # A → B
    _, code_b = await _invite(shop, B)
    _, code_c = await _invite(shop, C)  # C has used the shop (their /invite made their row)
    a_id = await _id(shop, A)

    attempts = [
        (A, code_a),  # self-referral
        (A, code_b),  # a cycle: A → B → A
        (B, code_c),  # re-attribution
        (C, code_a),  # an existing user
        (D, "r" + ("A" if code_a[1] != "A" else "B") + code_a[2:]),  # an unknown code
        (D, code_a + "_p0"),  # forged product
        (D, code_a + "_p" + "9" * 25),  # oversized product id
        (D, "r" + "A" * 70),  # oversized payload
        (D, code_a[:-1]),  # a short code
        (D, f"r{a_id}"),  # the old links by user id are gone
    ]
    for who, payload in attempts:
        reply = await shop.say(who, f"/start {payload}")
        assert words["welcome"] in reply.text, payload
    await asyncio.sleep(0.3)
    assert await _referrer(shop, A) is None
    assert await _referrer(shop, B) == a_id
    assert await _referrer(shop, C) is None
    assert await shop.services.users.find("telegram", str(D)) is None
    assert all(s.method == "sendMessage" for who in (A, B, C, D) for s in shop.emu.messages(who)[-1:])
    counts = {u: await shop.services.referrals.invite(await _id(shop, u)) for u in (A, B, C)}
    assert (counts[A].opens, counts[A].starts) == (3, 1)  # B's, A's own, C's
    assert (counts[B].opens, counts[B].starts) == (1, 0)
    assert (counts[C].opens, counts[C].starts) == (1, 0)


async def test_a_link_with_a_product_opens_its_card_after_attribution(shop: Shop, lang: str) -> None:
    for who in (A, B, C):
        shop.emu.user(who, "Ann", lang)
    pid = await shop.product(keys=3, name="Netflix")
    _, code = await _invite(shop, A)
    before = len(shop.emu.messages(B))
    await shop.emu.send_text(B, f"/start {code}_p{pid}")
    await shop.emu.wait_for(B, after=before)
    card = await shop.emu.wait_for(B, after=before + 1)
    assert "Netflix" in card.text and card.buttons
    assert await _referrer(shop, B) == await _id(shop, A)

    off = await shop.services.catalog.add_product(
        ProductDraft(name="Gone", price=100, price_stars=5, active=False)
    )
    reply = await shop.say(C, f"/start {code}_p{off}")
    await asyncio.sleep(0.3)
    assert shop.emu.messages(C)[-1] == reply  # the welcome only: no card of a product off sale
    assert await _referrer(shop, C) == await _id(shop, A)
