"""Issue 10's screens attacked through the real bot, in English and Chinese: payout text that is blank to the
eye, markup or not text at all; an admin setting their own commission terms or an owner's; the rates prompt
against the rule it describes; commands in groups that delete them at once or do not let the bot post, and
the new screens' buttons tapped there; an owner's unreadable admin buttons; a distributor who blocked the
bot before their payout is paid; two taps in flight at once on Confirm, Approve and Mark paid; inline
queries and /share arguments at and past their limits. Each attack gets a clear answer (or, in a group
that silences the bot, nothing) and changes nothing, with no error logged and no alert to the owners; what
the neighbouring files already attack (forged buttons, someone else's order or request, deep links) is not
repeated here.

The owner here is OWNER (not the fixture's ADMIN): the fixture fails a test in which ADMIN got a message."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from core import tables as t
from core.context import UnitOfWork
from core.models import AccountKind, PayoutStatus
from handlers.telegram.ui.callbacks import DistributorCb
from sandbox.telegram import Sent
from tests.e2e import test_distributors as distributors_e2e
from tests.e2e.conftest import Shop
from tests.e2e.test_withdraw import DIST, OWNER, T, _balance, _clean, _setup, _user_id

BUYER_OF_FRIEND = 805
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


RATES = {
    "en": {"left_out": "A level you leave out earns nothing", "saved": "15 %, their own"},
    "zh": {"left_out": "未填写的级别没有佣金", "saved": "15 %，单独设置"},
}


async def test_the_rates_prompt_says_what_a_level_left_out_earns_and_the_ledger_agrees(
    shop: Shop, lang: str
) -> None:
    """An owner types one rate for a distributor: level 2 then earns them nothing (``core.ledger.rates_for``),
    as the prompt says, never the shop's rate for that level."""
    words = RATES[lang]
    shop.emu.user(OWNER, "Owen", T[lang]["lang"])
    await shop.rebuild(admin_ids=[OWNER])
    await distributors_e2e._referred_purchase(shop, T[lang]["lang"])
    dist = await _user_id(shop, DIST)
    card = await shop.tap(OWNER, await shop.say(OWNER, "/distributors"), f"#{dist} ")
    ask = await shop.tap(OWNER, card, "✏️")
    assert words["left_out"] in ask.text
    assert words["saved"] in (await shop.say(OWNER, "15")).text

    # DIST's friend brings a buyer of their own: DIST is that buyer's level 2, at 15 % for level 1 only
    _, payload = await distributors_e2e._dashboard(shop, distributors_e2e.FRIEND)
    shop.emu.user(BUYER_OF_FRIEND, "Bea")
    await shop.say(BUYER_OF_FRIEND, f"/start {payload}")
    invoice = await shop.buy_one(BUYER_OF_FRIEND)
    assert (await shop.emu.pay(BUYER_OF_FRIEND, invoice))["paid"]
    await shop.emu.wait_for(BUYER_OF_FRIEND, lambda s: "KEY-" in s.text)
    order = await shop.services.orders.get(str(invoice.message["_payload"]))
    earned = {c.level: c.amount for c in await shop.services.ledger.commissions(order.id) if c.amount}
    assert earned == {1: 5}  # the friend's 10 % of 50 ⭐; nothing for DIST at level 2
    await _clean(shop)


STAFF_ADMIN = 900_003
TERMS = {
    "en": {"own": "your own commission terms", "owners": "Only an owner changes an owner's"},
    "zh": {"own": "不能修改自己的佣金设置", "owners": "只有店主可以修改店主的佣金设置"},
}


async def _alert(shop: Shop, user: int, on: Sent, data: str) -> str:
    answer = await shop.answer_to(await shop.tap_data(user, on, data))
    assert answer["show_alert"], (data, answer)
    return str(answer["text"])


async def test_nobody_sets_their_own_commission_terms_and_only_owners_set_an_owners(
    shop: Shop, lang: str
) -> None:
    """An admin with the distributors' power must not raise their own rates (to 100 %, say), block their
    own commissions, or touch an owner's: each is refused, logged, and changes nothing."""
    words, code = TERMS[lang], T[lang]["lang"]
    for who, name in ((OWNER, "Owen"), (STAFF_ADMIN, "Adam")):
        shop.emu.user(who, name, code)
    await shop.rebuild(admin_ids=[OWNER], tap_rate=100)
    await shop.say(OWNER, f"/staff admin {STAFF_ADMIN}")
    owner = (await shop.services.users.ensure("telegram", str(OWNER))).id
    staff = (await shop.services.users.ensure("telegram", str(STAFF_ADMIN))).id
    menu = await shop.say(STAFF_ADMIN, "/distributors")
    for target, told in ((staff, words["own"]), (owner, words["owners"])):
        for act, sure in (("rates", False), ("block", False), ("block", True)):
            data = DistributorCb(user_id=target, act=act, sure=sure).pack()  # type: ignore[arg-type]
            assert told in await _alert(shop, STAFF_ADMIN, menu, data), data
    owner_menu = await shop.say(OWNER, "/distributors")
    for act, sure in (("rates", False), ("block", True)):
        data = DistributorCb(user_id=owner, act=act, sure=sure).pack()  # type: ignore[arg-type]
        assert words["own"] in await _alert(shop, OWNER, owner_menu, data), data
    for uid in (owner, staff):
        card = await shop.services.distributors.card(uid)
        assert card.rates is None and not card.blocked
    # an owner still sets a staff member's rates: the rule is about whose terms, not about staff
    before = len(shop.emu.messages(OWNER))
    await shop.tap_data(OWNER, owner_menu, DistributorCb(user_id=staff, act="rates").pack())
    await shop.emu.wait_for(OWNER, after=before)
    await shop.say(OWNER, "12")
    assert (await shop.services.distributors.card(staff)).rates == (1200,)
    trail = await shop.services.audit.recent(actor=f"telegram:{STAFF_ADMIN}")
    assert not [e for e in trail.entries if e.action.startswith("distributor_")]


GROUP = -100_810
PRIVATE_ONLY = {"en": "please open me in a private chat", "zh": "请在私聊中打开我"}


async def test_a_command_deleted_before_the_reply_in_a_group_alerts_nobody_and_group_taps_do_nothing(
    shop: Shop, lang: str
) -> None:
    """Groups often run a moderation bot that deletes every command at once: the bot's "open me in private"
    goes out all the same (not as a reply to a message that is gone), with no error and no alert. The new
    screens' buttons tapped on a group message, by a member or an owner, only say to open the private chat."""
    code, told = T[lang]["lang"], PRIVATE_ONLY[lang]
    for who, name in ((OWNER, "Owen"), (DIST, "Dora")):
        shop.emu.user(who, name, code)
    await shop.rebuild(admin_ids=[OWNER])
    group = shop.emu.group(GROUP, "Gamers", members=[OWNER, DIST])
    kept = (await shop.emu.send_text(DIST, "/withdraw", chat=group))["message"]
    reply = await shop.emu.wait_for(GROUP)
    assert told in reply.text and reply.message["reply_to_message"]["message_id"] == kept["message_id"]
    commands = ((DIST, "/withdraw"), (DIST, "/invite"), (OWNER, "/payouts"), (OWNER, "/distributors"))
    for user, command in commands:
        before = len(shop.emu.messages(GROUP))
        await shop.emu.send_text(user, command, chat=group, deleted=True)
        reply = await shop.emu.wait_for(GROUP, after=before)
        assert told in reply.text and "reply_to_message" not in reply.message, command
    on = shop.emu.messages(GROUP)[-1]
    taps = ("w:open", "w:pick:USD", "i:0", "pb:ABCDEF12:go", "apo:list:0:0", "adi:USD:0", "adic:1:block:1")
    for data in taps:
        for user in (DIST, OWNER):
            assert told in await _alert(shop, user, on, data), (data, user)
    assert await shop.services.users.find("telegram", str(DIST)) is None  # nothing stored for them


async def _together(shop: Shop, user: int, on: Sent, data: str) -> list[dict[str, object]]:
    """Two taps on the same button in flight at once; both answers."""
    qids = await asyncio.gather(shop.emu.tap(user, on, data), shop.emu.tap(user, on, data))
    return [await shop.answer_to(q) for q in qids]


async def _outbox_of(shop: Shop, uid: int) -> list[tuple[str, str]]:
    def read(uow: UnitOfWork) -> list[tuple[str, str]]:
        o = t.outbox
        rows = uow.repo.conn.execute(select(o.c.kind, o.c.status).where(o.c.user_id == uid).order_by(o.c.id))
        return [(str(r[0]), str(r[1])) for r in rows]

    return await shop.services.ctx.read(read)


async def test_two_taps_in_flight_decide_once_and_a_distributor_who_blocked_the_bot_is_not_retried(
    shop: Shop, lang: str
) -> None:
    words = T[lang]
    dist = await _setup(shop, words, tap_rate=100)
    ask = await shop.tap(DIST, await shop.say(DIST, "/withdraw"), words["pick"])
    assert words["ask"] in ask.text
    confirm = await shop.say(DIST, "Alipay 138 0000 0000")
    await _together(shop, DIST, confirm, confirm.button(words["go"])["callback_data"])
    (payout,) = await shop.services.payouts.mine(dist)  # one request, however many taps
    assert await _balance(shop, dist, AccountKind.WITHDRAWING) == 1200
    assert await _balance(shop, dist, AccountKind.AVAILABLE) == 0

    queue = await shop.say(OWNER, "/payouts")
    approve = queue.button(words["approve"].format(payout.id))["callback_data"]
    answers = await _together(shop, OWNER, queue, approve)
    assert sum(words["decided"] in str(a["text"]) for a in answers) == 1, answers
    approved = await shop.emu.wait_for(OWNER, lambda s: words["paid"].format(payout.id) in str(s.buttons))
    await shop.tap(OWNER, approved, words["paid"].format(payout.id))
    sure = await shop.say(OWNER, "TX-2026-0002")
    shop.emu.block(DIST)  # the distributor blocked the bot meanwhile: the news cannot reach them
    answers = await _together(shop, OWNER, sure, sure.button(words["paid_sure"])["callback_data"])
    refused = [a for a in answers if a.get("show_alert")]
    assert len(refused) == 1  # already decided, or no longer waiting: the first tap cleared the input
    assert any(w in str(refused[0]["text"]) for w in (words["decided"], words["input_stale"]))
    for _ in range(250):
        if ("payout_paid", "failed") in await _outbox_of(shop, dist):
            break
        await asyncio.sleep(0.02)
    assert [k for k in await _outbox_of(shop, dist) if k[0] == "payout_paid"] == [("payout_paid", "failed")]
    found = await shop.services.users.find("telegram", str(DIST))
    assert found is not None and found.bot_blocked  # marked, as the outbox marks anyone who blocked the bot
    assert (await shop.services.payouts.line(payout.id)).payout.status is PayoutStatus.PAID
    assert await _balance(shop, dist, AccountKind.PAID_OUT) == 1200
    await _clean(shop)


NIGHT_GROUP = -100_811
RESTRICTED = {"en": "I may not post in that group", "zh": "我在该群没有发言权限"}


async def test_a_group_where_the_bot_may_not_post_refuses_quietly_and_the_sharer_hears_why(
    shop: Shop, lang: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The group's admins restricted the bot (or every member, in a read-only hour) but a command still
    reaches it: Telegram refuses the post with 400. That is the group's choice, not a fault of the shop:
    no error, no alert to the owners; the sharer is told in private why their card is not there."""
    caplog.set_level("INFO", logger="handlers.telegram")
    code = T[lang]["lang"]
    shop.emu.user(DIST, "Dora", code)
    group = shop.emu.group(NIGHT_GROUP, "Night mode", members=[DIST], admins=[DIST])
    group.bot_can_post = False
    pid = await shop.product(keys=1, name="Steam 10")
    before = len(shop.emu.messages(DIST))
    await shop.emu.send_text(DIST, f"/share {pid}", chat=group)
    told = await shop.emu.wait_for(DIST, after=before)
    assert RESTRICTED[lang] in told.text
    await shop.emu.send_text(DIST, "/withdraw", chat=group)
    for _ in range(250):
        if sum("may not post" in r.getMessage() for r in caplog.records) == 2:
            break
        await asyncio.sleep(0.02)
    assert sum("may not post" in r.getMessage() for r in caplog.records) == 2
    assert shop.emu.messages(NIGHT_GROUP) == []


async def test_an_owners_malformed_button_is_out_of_date_not_beyond_their_role(shop: Shop, lang: str) -> None:
    """An owner may do everything: a button of /payouts or /distributors that no screen can read (an old
    version's, or forged) is out of date for them, never "not part of your role" nor an audited refusal."""
    words = T[lang]
    shop.emu.user(OWNER, "Owen", words["lang"])
    await shop.rebuild(admin_ids=[OWNER], tap_rate=100)
    menu = await shop.say(OWNER, "/payouts")
    for data in (
        "apo:list:1:0",  # a page names no request
        "apo:approve:0:0",  # an action names one
        "apo:approve:" + "9" * 30 + ":0",
        "apo:nuke:1:0",
        "adi:usd:0",
        "adi:USD:-1",
        "adic:0:show:0",
        "adic:1:nuke:1",
        "a:",
    ):
        assert words["out_of_date"] in await _alert(shop, OWNER, menu, data), data
    trail = await shop.services.audit.recent(actor=f"telegram:{OWNER}")
    assert [e.action for e in trail.entries] == []


async def test_inline_queries_at_the_limit_with_markup_or_garbage_offsets_and_odd_share_ids(
    shop: Shop, lang: str
) -> None:
    """What a hostile client can put in an inline query (256 characters, markup, any offset: the offset is
    the one we gave, but nothing stops a client) and after /share (other scripts' digits, exponents, huge
    numbers): the first page or nothing, the usage, never an error."""
    code = T[lang]["lang"]
    shop.emu.user(DIST, "Dora", code)
    shop.emu.inline_mode = True
    await shop.rebuild(tap_rate=100)  # a burst of queries, not a test of the throttle
    pid = await shop.product(keys=1, name="Steam <b>10</b> & co")
    for query, offset, titles in (
        ("s" * 256, "", []),
        ("<b>steam</b>", "", []),
        ("<b>10</b> &", "", ["Steam <b>10</b> & co"]),
        ("steam", "-1", ["Steam <b>10</b> & co"]),
        ("steam", "99999999999999999999", ["Steam <b>10</b> & co"]),
        ("steam", "abc", ["Steam <b>10</b> & co"]),
        ("steam", "999999", []),  # past the end: nothing more
    ):
        answer = await shop.emu.inline_answer(await shop.emu.inline_query(DIST, query, offset=offset))
        assert [r["title"] for r in answer["results"]] == titles, (query[:20], offset)
        assert answer["next_offset"] == ""
    usage = (await shop.say(DIST, "/share")).text.split("\n\n")[0]
    for args in ("1e3", "١٢", str(10**30), "+1", f"{pid}.0"):
        assert (await shop.say(DIST, f"/share {args}")).text.startswith(usage), args
