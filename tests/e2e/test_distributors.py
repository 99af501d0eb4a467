"""Distributors through the real bot, in English and Chinese: the /invite dashboard after a friend's
purchase (the funnel, the commission pending, then available once the holding period is over, on a shifted
clock); the admins' /distributors, a distributor's card, setting their rates and blocking them, each change
audited and shown at once; a buyer and an operator refused."""

from __future__ import annotations

import re

import pytest

from core.models import CommissionStatus
from sandbox.telegram import Sent
from tests.e2e.conftest import ADMIN, Shop

DIST, FRIEND, STRANGER, OWNER, OPERATOR = 801, 802, 803, 900_002, 900_010

WORDS = {
    "en": {
        "funnel": "👀 Opened: {} → 🙋 New users: {} → 🛒 Buyers: {} → 📦 Orders: {}",
        "none": "No commissions yet",
        "pending": "⏳ pending 5 ⭐",
        "available": "✅ available 5 ⭐",
        "line": "order {} · level 1 · 5 ⭐ · {}",
        "state-pending": "pending",
        "state-available": "available",
        "refresh": "Refresh",
        "stale": "out of date",
        "title": "Distributors",
        "totals": "Distributors: 1 · Buyers they brought: 1",
        "rates": "Set rates",
        "bad": "Type one or two percentages",
        "saved": "Saved",
        "own": "Commission rates: 12,6 %, their own (the shop's: 10,5 %)",
        "shop": "Commission rates: the shop's (10,5 %)",
        "block": "Block",
        "yes-block": "Yes, block",
        "blocked": "⛔ Blocked",
        "unblock": "Unblock",
        "yes-unblock": "Yes, unblock",
        "earning": "✅ Earns commissions",
        "not-ban": "not a ban",
    },
    "zh-hans": {
        "funnel": "👀 打开次数：{} → 🙋 新用户：{} → 🛒 下单用户：{} → 📦 订单：{}",
        "none": "还没有佣金",
        "pending": "⏳ 待结算 5 ⭐",
        "available": "✅ 可提现 5 ⭐",
        "line": "订单 {} · 1 级 · 5 ⭐ · {}",
        "state-pending": "待结算",
        "state-available": "可提现",
        "refresh": "刷新",
        "stale": "按钮已失效",
        "title": "分销员",
        "totals": "分销员：1 · 推广来的下单用户：1",
        "rates": "设置佣金比例",
        "bad": "请输入一个或两个百分比",
        "saved": "已保存",
        "own": "佣金比例：12,6 %，单独设置（本店默认：10,5 %）",
        "shop": "佣金比例：本店默认（10,5 %）",
        "block": "停止佣金",
        "yes-block": "确认停止",
        "blocked": "⛔ 已停止佣金",
        "unblock": "恢复佣金",
        "yes-unblock": "确认恢复",
        "earning": "✅ 正常获得佣金",
        "not-ban": "这不是拉黑",
    },
}


@pytest.fixture(params=list(WORDS))
def lang(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _dashboard(shop: Shop, user: int) -> tuple[Sent, str]:
    """/invite: the QR code photo, then the dashboard (returned, with the link's start payload)."""
    before = len(shop.emu.messages(user))
    photo = await shop.say(user, "/invite")
    assert photo.method == "sendPhoto"
    m = re.search(r"\?start=([A-Za-z0-9_-]+)", photo.text)
    assert m is not None, photo.text
    return await shop.emu.wait_for(user, after=before + 1), m.group(1)


async def _referred_purchase(shop: Shop, lang: str) -> tuple[Sent, str]:
    """DIST invites FRIEND, who buys one 50-Star key: DIST's dashboard before, and the order's reference."""
    shop.emu.user(DIST, "Dana", lang)
    shop.emu.user(FRIEND, "Finn", "en")
    await shop.product(keys=3, name="Steam 10")
    dashboard, payload = await _dashboard(shop, DIST)
    await shop.say(FRIEND, f"/start {payload}")
    invoice = await shop.buy_one(FRIEND)
    ref = str(invoice.message["_payload"])
    assert (await shop.emu.pay(FRIEND, invoice))["paid"]
    await shop.emu.wait_for(FRIEND, lambda s: "KEY-" in s.text)
    return dashboard, ref


async def test_a_distributor_sees_the_funnel_and_the_commission_pending_then_available(
    shop: Shop, lang: str
) -> None:
    words = WORDS[lang]
    before, ref = await _referred_purchase(shop, lang)
    assert words["funnel"].format(0, 0, 0, 0) in before.text and words["none"] in before.text

    after = await shop.tap(DIST, before, words["refresh"])
    masked = f"{ref[:2]}…{ref[-2:]}"
    assert words["funnel"].format(1, 1, 1, 1) in after.text
    assert words["pending"] in after.text
    assert words["line"].format(masked, words["state-pending"]) in after.text
    assert ref not in after.text  # the buyer's order is never shown whole to the distributor

    shop.clock.advance(days=7)
    assert await shop.services.ledger.settle() == 1
    settled, _ = await _dashboard(shop, DIST)
    assert words["available"] in settled.text
    assert words["line"].format(masked, words["state-available"]) in settled.text
    (c,) = await shop.services.ledger.commissions((await shop.services.orders.get(ref)).id)
    assert (c.amount, c.status) == (5, CommissionStatus.AVAILABLE)

    # forged pages, and a dashboard button from someone the shop has never met: the stale-button alert
    shop.emu.user(STRANGER, "Sam", lang)
    for who, data in ((DIST, "i:-1"), (DIST, "i:99999999"), (DIST, "i:1:x"), (STRANGER, "i:0")):
        answer = await shop.answer_to(await shop.tap_data(who, settled, data))
        assert answer["show_alert"] and words["stale"] in str(answer["text"]), data
    assert await shop.services.users.find("telegram", str(STRANGER)) is None


async def test_an_owner_sets_a_distributors_rates_and_blocks_them_from_distributors(
    shop: Shop, lang: str
) -> None:
    words = WORDS[lang]
    shop.emu.user(OWNER, "Owen", lang)
    shop.emu.user(OPERATOR, "Olga")
    await shop.rebuild(admin_ids=[ADMIN, OWNER])
    await _referred_purchase(shop, lang)
    dist = await shop.services.users.find("telegram", str(DIST))
    assert dist is not None

    menu = await shop.say(OWNER, "/admin")
    overview = await shop.tap(OWNER, menu, "🤝")
    assert words["title"] in overview.text and words["totals"] in overview.text
    assert f"1. #{dist.id} · telegram:{DIST}" in overview.text and "5 ⭐" in overview.text
    card = await shop.tap(OWNER, overview, f"#{dist.id}")
    assert words["funnel"].format(1, 1, 1, 1) in card.text and words["shop"] in card.text

    ask = await shop.tap(OWNER, card, words["rates"])
    assert "12,6" in ask.text
    assert words["bad"] in (await shop.say(OWNER, "12,6,3")).text
    saved = await shop.say(OWNER, "12,6")
    assert words["saved"] in saved.text and words["own"] in saved.text
    assert (await shop.services.distributors.card(dist.id)).rates == (1200, 600)

    confirm = await shop.tap(OWNER, saved, words["block"])
    assert words["not-ban"] in confirm.text
    blocked = await shop.tap(OWNER, confirm, words["yes-block"])
    assert words["blocked"] in blocked.text
    assert (await shop.services.distributors.card(dist.id)).blocked
    confirm = await shop.tap(OWNER, blocked, words["unblock"])
    unblocked = await shop.tap(OWNER, confirm, words["yes-unblock"])
    assert words["earning"] in unblocked.text

    await shop.tap(OWNER, unblocked, words["rates"])
    back = await shop.say(OWNER, "default" if lang == "en" else "默认")
    assert words["shop"] in back.text
    assert (await shop.services.distributors.card(dist.id)).terms is not None
    assert (await shop.services.distributors.card(dist.id)).rates is None

    trail = await shop.services.audit.recent(actor=f"telegram:{OWNER}")
    assert [e.action for e in reversed(trail.entries) if e.action.startswith("distributor_")] == [
        "distributor_rates_set",
        "distributor_blocked",
        "distributor_unblocked",
        "distributor_rates_set",
    ]

    # A buyer never learns the command exists; an operator is told it is beyond their role.
    unknown = (await shop.say(FRIEND, "/no_such_command")).text
    assert (await shop.say(FRIEND, "/distributors")).text == unknown
    await shop.say(OWNER, f"/staff operator {OPERATOR}")
    assert "not part of your role" in (await shop.say(OPERATOR, "/distributors")).text
