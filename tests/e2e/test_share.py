"""Sharing in groups through the real bot, in English and Chinese: inline results (only products on sale,
names escaped), a card picked and posted via the bot, a friend who opens its Buy button landing on the
product's card and attributed to the sharer; /share in a group and in private; hostile arguments and
senders; a burst of /share in one group kept within Telegram's 20 messages a minute (no 429 at all)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from sandbox.telegram import EmuChat, Sent
from tests.e2e.conftest import Shop

DIST, FRIEND, OTHER, ADMIN_OF_GROUP = 801, 802, 803, 804
GROUP = -100_801

LANGS = {
    "en": {"in": "✅ In stock", "out": "❌ Sold out", "buy": "Buy", "usage": "/share ID", "busy": "again"},
    "zh-hans": {"in": "✅ 有货", "out": "❌ 已售罄", "buy": "购买", "usage": "/share 编号", "busy": "再试"},
}


@pytest.fixture(params=list(LANGS))
def lang(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _group(shop: Shop, lang: str, *members: int) -> EmuChat:
    for who in (DIST, FRIEND, OTHER, ADMIN_OF_GROUP, *members):
        shop.emu.user(who, "Fred" if who == FRIEND else "Dora", lang, started=who != FRIEND)
    return shop.emu.group(GROUP, "Gamers", members=[DIST, FRIEND, OTHER, *members], admins=[ADMIN_OF_GROUP])


async def _id(shop: Shop, tg_id: int) -> int:
    user = await shop.services.users.find("telegram", str(tg_id))
    assert user is not None
    return user.id


async def _code(shop: Shop, tg_id: int) -> str:
    return (await shop.services.referrals.invite(await _id(shop, tg_id))).code


async def _in_group(shop: Shop, user: int, text: str, group: EmuChat) -> Sent:
    before = len(shop.emu.messages(GROUP))
    await shop.emu.send_text(user, text, chat=group)
    return await shop.emu.wait_for(GROUP, after=before)


async def test_a_distributor_shares_inline_in_a_group_and_a_friend_lands_on_the_card_as_theirs(
    shop: Shop, lang: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="handlers.telegram.buyer.share")
    words, emu = LANGS[lang], shop.emu
    emu.inline_mode = emu.inline_feedback = True
    group = _group(shop, lang)
    steam = await shop.product(keys=3, name="Steam 10", description="Redeem on Steam")
    await shop.product(keys=0, name="Steam 50")
    await shop.product(keys=1, name="Netflix", description="Not steam at all")
    hidden = await shop.product(keys=2, name="Steam hidden")
    await shop.services.catalog.update_product(hidden, active=False)

    qid = await emu.inline_query(DIST, "STEAM", chat=group)
    answer = await emu.inline_answer(qid)
    results = answer["results"]
    assert [r["title"] for r in results] == ["Steam 10", "Steam 50", "Netflix"]  # names first, never hidden
    assert answer["is_personal"] and 0 < answer["cache_time"] <= 60 and answer["next_offset"] == ""
    assert results[0]["description"] == f"50 ⭐ · {words['in']}"
    assert results[1]["description"].endswith(words["out"])

    card = await emu.choose(DIST, qid, results[0]["id"])
    assert card.chat_id == GROUP and card.message["from"]["id"] == DIST
    assert card.message["via_bot"]["username"] == emu.bot_username
    assert card.text.startswith("Steam 10\nRedeem on Steam") and words["in"] in card.text
    assert card.message["entities"][0]["type"] == "bold"  # sent as HTML
    url = card.button(words["buy"])["url"]
    assert url == f"https://t.me/{emu.bot_username}?start=r{await _code(shop, DIST)}_p{steam}"
    for _ in range(100):  # the chosen result reaches the bot (inline feedback): it is logged
        if any(f"shared p{steam} inline" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the chosen inline result never reached the bot")

    before = len(emu.messages(FRIEND))
    await emu.open_link(FRIEND, url)  # the friend taps Buy under the card in the group
    await emu.wait_for(FRIEND, after=before)  # the welcome
    product = await emu.wait_for(FRIEND, after=before + 1)
    assert product.text.startswith("Steam 10") and product.button("50 ⭐")
    friend = await shop.services.users.find("telegram", str(FRIEND))
    assert friend is not None and friend.referrer_id == await _id(shop, DIST)


async def test_inline_results_escape_hostile_names_page_by_fifty_and_only_products_on_sale(
    shop: Shop, lang: str
) -> None:
    emu = shop.emu
    emu.inline_mode = True
    _group(shop, lang)
    hostile = await shop.product(keys=1, name="Tom & Jerry <3 </b>", description="<script>x</script> & co")
    for i in range(52):
        await shop.product(name=f"Gift {i:02d}", delivery_kind="shared")
    qid = await emu.inline_query(DIST, "tom")
    (only,) = (await emu.inline_answer(qid))["results"]
    assert only["title"] == "Tom & Jerry <3 </b>"  # plain text: shown as typed
    assert only["text"].startswith("Tom & Jerry <3 </b>\n<script>x</script> & co")
    assert only["html"].startswith("<b>Tom &amp; Jerry &lt;3 &lt;/b&gt;</b>")
    first = await emu.inline_query(DIST, "gift")
    page = await emu.inline_answer(first)
    assert len(page["results"]) == 50 and page["next_offset"] == "50"
    rest = await emu.inline_query(DIST, "gift", offset=page["next_offset"])
    assert [r["title"] for r in (await emu.inline_answer(rest))["results"]] == ["Gift 50", "Gift 51"]
    await shop.services.catalog.update_product(hostile, active=False)
    assert (await emu.inline_answer(await emu.inline_query(DIST, "tom")))["results"] == []


async def test_a_blocklisted_user_gets_no_inline_results_and_shares_nothing(shop: Shop, lang: str) -> None:
    emu = shop.emu
    emu.inline_mode = True
    group = _group(shop, lang)
    pid = await shop.product(keys=1, name="Steam 10")
    user = await shop.services.users.ensure("telegram", str(DIST))
    await shop.services.users.set_blocklisted(user.id, True)
    answer = await emu.inline_answer(await emu.inline_query(DIST, "steam"))
    assert answer["results"] == []
    await emu.send_text(DIST, f"/share {pid}", chat=group)
    refusal = await shop.say(DIST, f"/share {pid}")
    assert "share" in refusal.text.lower() or "分享" in refusal.text
    await asyncio.sleep(0.3)
    assert shop.emu.messages(GROUP) == []
    assert (await shop.services.referrals.invite(user.id)).opens == 0  # and no code was made before


async def test_share_in_a_group_posts_the_card_with_the_sharers_link_and_in_private_a_preview(
    shop: Shop, lang: str
) -> None:
    words = LANGS[lang]
    group = _group(shop, lang)
    pid = await shop.product(keys=0, name="Tom & Jerry <3", description="Cartoons")
    card = await _in_group(shop, OTHER, f"/share {pid}", group)  # a newcomer: their code is made now
    assert card.text.startswith("Tom & Jerry <3\nCartoons") and words["out"] in card.text
    url = card.button(words["buy"])["url"]
    assert url.endswith(f"?start=r{await _code(shop, OTHER)}_p{pid}")
    again = await _in_group(shop, OTHER, f"/share@{shop.emu.bot_username} {pid}", group)
    assert again.button(words["buy"])["url"] == url  # the same code every time

    preview = await shop.say(DIST, f"/share {pid}")
    assert preview.text == card.text and preview.button(words["buy"])["url"].endswith(f"_p{pid}")
    listing = await shop.say(DIST, "/share")
    assert words["usage"] in listing.text and f"/share {pid} Tom & Jerry <3" in listing.text

    before = len(shop.emu.messages(FRIEND))
    await shop.emu.open_link(FRIEND, url)
    await shop.emu.wait_for(FRIEND, after=before + 1)
    friend = await shop.services.users.find("telegram", str(FRIEND))
    assert friend is not None and friend.referrer_id == await _id(shop, OTHER)


async def test_hostile_share_arguments_and_senders_get_a_short_answer_or_silence(
    shop: Shop, lang: str
) -> None:
    words = LANGS[lang]
    senders = iter(range(820, 840))  # one each: a person's /share gets 5 posts a group and minute
    group = _group(shop, lang, *range(820, 840))
    await shop.rebuild(sender={"group_gap": 0.05})  # 11 answers in one group: not about the pace
    shop.emu.per_chat_rate = shop.emu.per_chat_burst = 100.0
    hidden = await shop.product(keys=1, name="Hidden")
    await shop.services.catalog.update_product(hidden, active=False)
    for args in ("", "abc", "0", "-1", "01", "1 2", "²", "9" * 25, "1" + "0" * 19):
        reply = await _in_group(shop, next(senders), f"/share {args}".strip(), group)
        assert words["usage"] in reply.text and not reply.buttons, args
    for pid in (hidden, 10**12):
        reply = await _in_group(shop, next(senders), f"/share {pid}", group)
        assert str(pid) in reply.text and not reply.buttons
    posted = len(shop.emu.messages(GROUP))
    await shop.emu.send_anonymous(group, f"/share {hidden}")  # an anonymous admin: nobody to credit
    await shop.emu.send_text(next(senders), f"/share@another_bot {hidden}", chat=group)
    channel = shop.emu.channel(-100_999, "News", admins=[ADMIN_OF_GROUP])
    await shop.emu.channel_post(channel, "/share 1")
    await asyncio.sleep(0.3)
    assert len(shop.emu.messages(GROUP)) == posted and shop.emu.messages(-100_999) == []


async def test_a_burst_of_share_in_one_group_posts_20_cards_a_minute_and_meets_no_429(
    shop: Shop, lang: str
) -> None:
    words = LANGS[lang]
    sharers = list(range(810, 817))  # 7 people × 5 /share: 35, where the group takes 20 a minute
    group = _group(shop, lang, *sharers)
    await shop.rebuild(sender={"group_gap": 0.05})  # the bot's pace in a group: fast, for the test
    shop.emu.per_chat_rate = shop.emu.per_chat_burst = 100.0  # the group's 20 a minute is what is tested
    pid = await shop.product(keys=5, name="Steam 10")
    await asyncio.gather(
        *(shop.emu.send_text(who, f"/share {pid}", chat=group) for who in sharers for _ in range(5))
    )
    await shop.emu.wait_for(GROUP, after=19, within=10)
    codes = {who: await _code(shop, who) for who in sharers}
    posted = {
        who: sum(1 for c in shop.emu.messages(GROUP) if f"r{code}_p" in c.button(words["buy"])["url"])
        for who, code in codes.items()
    }
    dropped = [who for who in sharers if posted[who] < 5]
    for who in dropped:  # each sharer whose card was dropped is told so, in private
        await shop.emu.wait_for(who, lambda s: words["busy"] in s.text, within=10)
    await asyncio.sleep(0.5)
    assert len(shop.emu.messages(GROUP)) == 20 and sum(posted.values()) == 20 and len(dropped) >= 3
    assert shop.emu.flood_refusals == []  # not a single 429 from Telegram
    for who in sharers:  # once, however many of theirs were dropped
        told = [s for s in shop.emu.messages(who) if words["busy"] in s.text]
        assert len(told) == (1 if who in dropped else 0)
    await shop.emu.send_text(OTHER, f"/share {pid}", chat=group)  # the group's minute is used up
    await shop.emu.wait_for(OTHER, lambda s: words["busy"] in s.text)
    assert len(shop.emu.messages(GROUP)) == 20 and shop.emu.flood_refusals == []
