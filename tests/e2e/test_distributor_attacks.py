"""Issue 10's screens attacked through the real bot, in English and Chinese: payout text that is blank to the
eye, markup or not text at all; a distributor who blocked the bot before their payout is paid; two taps in
flight at once on Confirm, Approve and Mark paid. Each attack gets a clear answer and changes nothing; what
the neighbouring files already attack (forged buttons, someone else's order or request, hostile /share and
inline queries, deep links) is not repeated here.

The owner here is OWNER (not the fixture's ADMIN): the fixture fails a test in which ADMIN got a message."""

from __future__ import annotations

import pytest

from core.models import AccountKind, PayoutStatus
from sandbox.telegram import Sent
from tests.e2e.conftest import Shop
from tests.e2e.test_withdraw import DIST, OWNER, T, _balance, _clean, _setup

HANGUL_FILLER, HALFWIDTH_FILLER, CGJ, VS16 = "\u3164", "\uffa0", "\u034f", "\ufe0f"  # invisible, not Cf

W = {
    "en": {"details_invalid": "1 to 200 characters", "admin_invalid": "Type 1 to 128 characters"},
    "zh": {"details_invalid": "1 到 200 个字符", "admin_invalid": "请输入 1 到 128 个字符"},
}


@pytest.fixture(params=list(T))
def lang(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _sticker(shop: Shop, user: int) -> Sent:
    """The user sends a sticker (no text at all); the bot's first reply."""
    sticker = {"file_id": "st", "file_unique_id": "st-u", "width": 512, "height": 512, "type": "regular"}
    sticker |= {"is_animated": False, "is_video": False}
    before = len(shop.emu.messages(user))
    await shop.emu._push(message=shop.emu._user_message(shop.emu.user(user), sticker=sticker))
    return await shop.emu.wait_for(user, after=before)


async def test_payout_text_blank_to_the_eye_or_not_text_is_refused_and_markup_is_shown_as_typed(
    shop: Shop, lang: str
) -> None:
    words, w = T[lang], W[lang]
    dist = await _setup(shop, words, tap_rate=100)
    screen = await shop.say(DIST, "/withdraw")
    ask = await shop.tap(DIST, screen, words["pick"])
    assert words["ask"] in ask.text
    for blank in (HANGUL_FILLER * 3, f"{HALFWIDTH_FILLER} {CGJ}{VS16}"):
        assert w["details_invalid"] in (await shop.say(DIST, blank)).text, repr(blank)
    assert w["details_invalid"] in (await _sticker(shop, DIST)).text
    confirm = await shop.say(DIST, "<b>IBAN</b> DE00 & </code>")
    assert "<b>IBAN</b> DE00 & </code>" in confirm.text and words["confirm"] in confirm.text
    await shop.tap(DIST, confirm, words["go"])
    (payout,) = await shop.services.payouts.mine(dist)
    assert payout.details == "<b>IBAN</b> DE00 & </code>"

    queue = await shop.say(OWNER, "/payouts")
    approved = await shop.tap(OWNER, queue, words["approve"].format(payout.id))
    await shop.tap(OWNER, approved, words["paid"].format(payout.id))
    for blank in (HANGUL_FILLER, CGJ + VS16):
        assert w["admin_invalid"] in (await shop.say(OWNER, blank)).text, repr(blank)
    assert w["admin_invalid"] in (await _sticker(shop, OWNER)).text
    sure = await shop.say(OWNER, "TX-1")
    assert words["paid_sure"] in str(sure.buttons)
    assert (await shop.services.payouts.line(payout.id)).payout.status is PayoutStatus.APPROVED
    assert await _balance(shop, dist, AccountKind.WITHDRAWING) == 1200
    await _clean(shop)
