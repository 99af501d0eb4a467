"""A distributor's whole journey through the real bot, in English and Chinese, with ``keyshop ledger check``
clean after every step: they share a product inline in a group; a friend opens the card, lands on the
product and buys it with Stars; the distributor sees the commission pending on their /invite dashboard,
then available once the holding period is over (the clock shifted); they spend part of it as shop balance
on an order of their own, and withdraw the rest, which an owner approves and marks paid in /payouts."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from bot.cli import main
from core.models import STARS, AccountKind
from handlers.telegram.ui.callbacks import PayoutCb, WithdrawCb
from sandbox.telegram import Sent
from tests.e2e.conftest import Shop

OWNER, DIST, FRIEND = 900_002, 811, 812
GROUP = -100_811
PRICE = 500  # Stars: level 1 earns 10 %, 50 Stars
EARNED = 50
SMALL = 20  # what the distributor buys with their balance
RATE = 10  # STARS_PAYOUT_RATE: 10 cents a Star, so the 30 Stars left pay 3.00 USD

WORDS = {
    "en": {
        "pending": "⏳ pending",
        "available": "✅ available",
        "spent": "🛍 spent",
        "paid_out": "💸 paid out",
        "paid": "Your withdrawal #{} was paid: $3.00",
    },
    "zh-hans": {
        "pending": "⏳ 待结算",
        "available": "✅ 可提现",
        "spent": "🛍 已消费",
        "paid_out": "💸 已打款",
        "paid": "你的提现 #{} 已打款：$3.00",
    },
}


@pytest.fixture(params=list(WORDS))
def lang(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def _cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """``keyshop ledger check`` reads only the database it is given."""
    for name in ("DATABASE_URL", "VAULT_KEYS", "BOT_TOKEN", "ADMIN_IDS", "SHOP_CURRENCY", "COMMISSION_RATES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "cli-data"))


async def _ledger_check_is_clean(shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    url = shop.services.ctx.db.url.render_as_string(hide_password=False)
    code = await asyncio.to_thread(main, ["ledger", "check", "--database-url", url])
    out, _err = capsys.readouterr()
    assert code == 0 and out.strip().endswith("ledger clean"), out


def _button(sent: Sent, data: str) -> str:
    """The callback data of ``sent``'s button whose data is, or starts with, ``data``."""
    found = [b["callback_data"] for b in sent.buttons if str(b.get("callback_data", "")).startswith(data)]
    assert found, f"no {data!r} button in {sent.buttons}"
    return str(found[0])


async def _tap(shop: Shop, user: int, sent: Sent, data: str) -> Sent:
    before = len(shop.emu.messages(user))
    await shop.emu.tap(user, sent, _button(sent, data))
    return await shop.emu.wait_for(user, after=before)


async def _dashboard(shop: Shop) -> str:
    """/invite: the QR code with the link, then the dashboard; the dashboard's text."""
    before = len(shop.emu.messages(DIST))
    await shop.emu.send_text(DIST, "/invite")
    await shop.emu.wait_for(DIST, lambda s: s.method == "sendPhoto", after=before)
    board = await shop.emu.wait_for(DIST, lambda s: s.method == "sendMessage", after=before)
    return board.text


async def _balance(shop: Shop, uid: int, kind: AccountKind) -> int:
    found = await shop.services.ledger.balances(uid)
    return sum(b.amount for b in found if b.kind is kind and b.currency == STARS)


async def test_share_buy_earn_settle_spend_and_withdraw_with_a_clean_ledger_at_every_step(
    shop: Shop, lang: str, capsys: pytest.CaptureFixture[str]
) -> None:
    words, emu, s = WORDS[lang], shop.emu, shop.services
    s.ctx.config = replace(s.ctx.config, stars_payout_rate=RATE, payout_minimum=100)
    emu.user(OWNER, "Owen", lang)
    emu.user(DIST, "Dora", lang)
    emu.user(FRIEND, "Finn", lang, started=False)
    await shop.rebuild(admin_ids=[OWNER], brisk=True)  # a long walk, not a test of the pace
    emu.inline_mode = emu.inline_feedback = True
    group = emu.group(GROUP, "Gamers", members=[DIST, FRIEND], admins=[DIST])
    game = await shop.product(keys=2, name="Steam 500", price_stars=PRICE)
    await shop.product(keys=2, name="Small gift", price_stars=SMALL)
    await _ledger_check_is_clean(shop, capsys)

    # 1. The distributor shares the product inline in the group; the card is posted via the bot.
    qid = await emu.inline_query(DIST, "steam", chat=group)
    (result,) = (await emu.inline_answer(qid))["results"]
    card = await emu.choose(DIST, qid, result["id"])
    assert card.chat_id == GROUP and card.message["via_bot"]["username"] == emu.bot_username
    url = next(b["url"] for b in card.buttons if "url" in b)
    assert url.endswith(f"_p{game}")

    # 2. The friend opens the card's link, lands on the product in private, and buys it with Stars.
    before = len(emu.messages(FRIEND))
    await emu.open_link(FRIEND, url)
    product = await emu.wait_for(FRIEND, lambda m: m.text.startswith("Steam 500"), after=before)
    invoice = await _tap(shop, FRIEND, product, "b:")
    assert invoice.method == "sendInvoice"
    assert (await emu.pay(FRIEND, invoice))["paid"]
    await emu.wait_for(FRIEND, lambda m: "KEY-" in m.text)
    dist = await s.users.find("telegram", str(DIST))
    friend = await s.users.find("telegram", str(FRIEND))
    assert dist is not None and friend is not None and friend.referrer_id == dist.id
    await _ledger_check_is_clean(shop, capsys)

    # 3. The distributor sees the commission pending.
    board = await _dashboard(shop)
    assert f"{words['pending']} {EARNED} ⭐" in board and f"{words['available']} 0 ⭐" in board
    assert await _balance(shop, dist.id, AccountKind.PENDING) == EARNED

    # 4. The holding period passes: the settlement makes it available.
    shop.clock.advance(days=7, minutes=1)
    assert await s.ledger.settle() == 1
    board = await _dashboard(shop)
    assert f"{words['pending']} 0 ⭐" in board and f"{words['available']} {EARNED} ⭐" in board
    await _ledger_check_is_clean(shop, capsys)

    # 5. They spend part of it as shop balance: the small gift, paid from the balance, delivered.
    listing = await shop.say(DIST, "/catalog")
    gift = await shop.tap(DIST, listing, "Small gift")
    before = len(emu.messages(DIST))
    await emu.tap(DIST, gift, _button(gift, "b:"))
    offer = await emu.wait_for(
        DIST, lambda m: any(b.get("callback_data", "").startswith("pb:") for b in m.buttons), after=before
    )
    ask = await _tap(shop, DIST, offer, "pb:")
    paid = await _tap(shop, DIST, ask, f"{_button(ask, 'pb:').rsplit(':', 1)[0]}:go")
    assert paid.message["message_id"] == offer.message["message_id"]
    await emu.wait_for(DIST, lambda m: "KEY-" in m.text, after=before)
    assert await _balance(shop, dist.id, AccountKind.AVAILABLE) == EARNED - SMALL
    assert await _balance(shop, dist.id, AccountKind.SPENT) == SMALL
    await _ledger_check_is_clean(shop, capsys)

    # 6. They withdraw the rest; the owner approves it and marks it paid with a reference.
    screen = await shop.say(DIST, "/withdraw")
    ask_details = await _tap(shop, DIST, screen, WithdrawCb(action="pick", currency=STARS).pack())
    assert "30 ⭐" in ask_details.text
    confirm = await shop.say(DIST, "Alipay 138 0000 0000")
    await _tap(shop, DIST, confirm, WithdrawCb(action="go", currency=STARS).pack())
    (request,) = await s.payouts.mine(dist.id)
    assert (request.amount, request.payout_amount, request.payout_currency) == (30, 300, "USD")
    assert await _balance(shop, dist.id, AccountKind.AVAILABLE) == 0
    await _ledger_check_is_clean(shop, capsys)

    queue = await shop.say(OWNER, "/payouts")
    assert f"#{request.id}" in queue.text and "Alipay 138 0000 0000" in queue.text
    approved = await _tap(shop, OWNER, queue, PayoutCb(action="approve", payout_id=request.id).pack())
    await _ledger_check_is_clean(shop, capsys)
    ask_ref = await _tap(shop, OWNER, approved, PayoutCb(action="paid", payout_id=request.id).pack())
    sure = await shop.say(OWNER, "TX-2026-0042")
    before = len(emu.messages(DIST))
    await _tap(shop, OWNER, sure, PayoutCb(action="paidok", payout_id=request.id).pack())
    told = await emu.wait_for(DIST, after=before)
    assert words["paid"].format(request.id) in told.text and "TX-2026-0042" in told.text
    assert ask_ref.chat_id == OWNER
    await _ledger_check_is_clean(shop, capsys)

    # 7. Where the money went, on the dashboard: nothing pending or available, spent and paid out.
    board = await _dashboard(shop)
    assert f"{words['available']} 0 ⭐" in board
    assert f"{words['spent']} {SMALL} ⭐" in board and f"{words['paid_out']} 30 ⭐" in board
    assert await _balance(shop, dist.id, AccountKind.PAID_OUT) == 30
    await _ledger_check_is_clean(shop, capsys)
