"""Withdrawals end to end through the emulator, in English and Simplified Chinese: a distributor whose
referral bought (commission settled after the holding period, the clock shifted) runs /withdraw, types
where to be paid and confirms; an owner approves it in /payouts and marks it paid with the payment's
reference; the distributor is told. A rejected request gives the money back. Buyers and operators never
reach the queue, and forged or stale buttons change nothing. The ledger checks clean at every step.

The owner here is OWNER only (not the fixture's ADMIN): the fixture fails a test in which ADMIN got a
message."""

from __future__ import annotations

import asyncio

import pytest

from core.models import AccountKind, PayoutStatus
from handlers.telegram.ui.callbacks import PayoutCb, WithdrawCb
from sandbox.telegram import Sent
from tests.e2e.conftest import Shop

OWNER, OPERATOR, DIST, BUYER = 900_002, 900_010, 801, 802

T = {
    "en": {
        "lang": "en",
        "title": "Withdraw commission",
        "ready": "$12.00: ready to withdraw",
        "pick": "Withdraw $12.00",
        "ask": "Where should the admin pay you?",
        "confirm": "Is the account right?",
        "go": "Confirm the withdrawal",
        "sent": "Withdrawal request #{} sent",
        "open": "Request #{} for $12.00: waiting for review",
        "queue": "Withdrawal requests",
        "approve": "Approve #{}",
        "paid": "Mark paid #{}",
        "reference": "type the payment's reference",
        "paid_sure": "Confirm it is paid",
        "reject": "Reject #{}",
        "reason": "Why is request #{}",
        "reject_sure": "Confirm the rejection",
        "empty": "No withdrawal request is waiting.",
        "told_paid": "Your withdrawal #{} was paid: $12.00",
        "told_rejected": "Your withdrawal #{} of $12.00 was rejected: wrong account",
        "invalid": "1 to 200 characters",
        "stale": "no longer in progress",
        "input_stale": "no longer waiting for your input",
        "out_of_date": "out of date",
        "decided": "already decided",
        "none": "no commission to withdraw yet",
        "not_role": "not part of your role",
        "unknown": "I don't know that command",
        "owes": "A refund took back $12.00 of commission since the request",
        "uncovered": "Request #{} is no longer covered: a refund took back $12.00",
    },
    "zh": {
        "lang": "zh-hans",
        "title": "佣金提现",
        "ready": "$12.00：可提现",
        "pick": "提现 $12.00",
        "ask": "管理员应打款到哪里？",
        "confirm": "收款账户正确吗？",
        "go": "确认提现",
        "sent": "提现申请 #{} 已提交",
        "open": "提现申请 #{}（$12.00）：待审核",
        "queue": "提现申请",
        "approve": "批准 #{}",
        "paid": "标记已打款 #{}",
        "reference": "输入打款凭证号",
        "paid_sure": "确认已打款",
        "reject": "拒绝 #{}",
        "reason": "为什么拒绝申请 #{}",
        "reject_sure": "确认拒绝",
        "empty": "没有待处理的提现申请。",
        "told_paid": "你的提现 #{} 已打款：$12.00",
        "told_rejected": "你的提现 #{}（$12.00）被拒绝：wrong account",
        "invalid": "1 到 200 个字符",
        "stale": "这次提现已失效",
        "input_stale": "此操作已失效",
        "out_of_date": "按钮已失效",
        "decided": "已被处理",
        "none": "你还没有可提现的佣金",
        "not_role": "不在您的角色权限",
        "unknown": "无法识别该指令",
        "owes": "申请后因退款追回了 $12.00 佣金",
        "uncovered": "申请 #{} 已不足额：申请后因退款追回了 $12.00 佣金",
    },
}


@pytest.fixture(params=list(T))
def words(request: pytest.FixtureRequest) -> dict[str, str]:
    return T[str(request.param)]


async def _user_id(shop: Shop, tg_id: int) -> int:
    user = await shop.services.users.find("telegram", str(tg_id))
    assert user is not None
    return user.id


async def _setup(shop: Shop, words: dict[str, str], tap_rate: float | None = None) -> int:
    """OWNER, an operator, and DIST with 12.00 USD of settled commission: DIST's referral BUYER bought a
    120.00 USD key, and the holding period passed (the clock shifted). Returns DIST's shop user id.
    ``tap_rate``: for a test that taps many buttons and is not about the throttle."""
    lang = words["lang"]
    for tg, name in ((OWNER, "Owen"), (OPERATOR, "Olga"), (DIST, "Dora"), (BUYER, "Ann")):
        shop.emu.user(tg, name, lang)
    await shop.rebuild(admin_ids=[OWNER], tap_rate=tap_rate)
    await shop.say(OWNER, f"/staff operator {OPERATOR}")
    s = shop.services
    dist = (await s.users.ensure("telegram", str(DIST), language=None)).id
    buyer = (await s.users.ensure("telegram", str(BUYER), language=None)).id
    from sqlalchemy import update

    from core import tables as t

    await s.ctx.db.run_committed(
        lambda conn: conn.execute(update(t.users).where(t.users.c.id == buyer).values(referrer_id=dist))
    )
    pid = await shop.product(keys=1, name="Gift card", price=12_000)
    order = await s.checkout.checkout(buyer, pid, 1, "USD")
    await s.payments.confirm_payment("telegram", "ch-1", order.ref, order.amount, "USD")
    await shop.emu.wait_for(BUYER)  # the keys, delivered
    shop.clock.advance(days=7)
    assert await s.ledger.settle() == 1
    await _clean(shop)
    return dist


async def _clean(shop: Shop) -> None:
    assert await shop.services.ledger.check() == []


async def _balance(shop: Shop, uid: int, kind: AccountKind) -> int:
    return sum(
        b.amount for b in await shop.services.ledger.balances(uid) if b.kind is kind and b.currency == "USD"
    )


async def _request(shop: Shop, words: dict[str, str], details: str) -> tuple[int, Sent]:
    """DIST runs /withdraw, picks the balance, types ``details`` and confirms: the request's id."""
    screen = await shop.say(DIST, "/withdraw")
    assert words["title"] in screen.text and words["ready"] in screen.text, screen.text
    ask = await shop.tap(DIST, screen, words["pick"])
    assert words["ask"] in ask.text
    confirm = await shop.say(DIST, details)
    assert words["confirm"] in confirm.text
    done = await shop.tap(DIST, confirm, words["go"])
    payouts = await shop.services.payouts.mine(await _user_id(shop, DIST))
    assert words["sent"].format(payouts[0].id) in done.text, done.text
    return payouts[0].id, confirm


async def test_a_distributor_withdraws_and_an_owner_approves_and_marks_it_paid(
    shop: Shop, words: dict[str, str]
) -> None:
    dist = await _setup(shop, words)
    assert "withdraw" in shop.emu.menu(DIST, words["lang"])
    pid, confirm = await _request(shop, words, "Alipay\u200b 138\u202e 0000 0000")
    assert await _balance(shop, dist, AccountKind.AVAILABLE) == 0
    assert await _balance(shop, dist, AccountKind.WITHDRAWING) == 1200
    await _clean(shop)
    # Confirm again (a double tap): the flow is over, nothing more is asked for
    qid = await shop.tap_data(DIST, confirm, WithdrawCb(action="go", currency="USD").pack())
    assert words["stale"] in str((await shop.answer_to(qid))["text"])
    assert len(await shop.services.payouts.mine(dist)) == 1
    again = await shop.say(DIST, "/withdraw")
    assert words["open"].format(pid) in again.text and not again.buttons

    queue = await shop.say(OWNER, "/payouts")
    assert words["queue"] in queue.text and f"#{pid}" in queue.text
    assert "Alipay 138 0000 0000" in queue.text and "$12.00" in queue.text and str(DIST) in queue.text
    approved = await shop.tap(OWNER, queue, words["approve"].format(pid))
    assert approved.button(words["paid"].format(pid))
    assert await _balance(shop, dist, AccountKind.WITHDRAWING) == 1200  # approving moves no money
    ask = await shop.tap(OWNER, approved, words["paid"].format(pid))
    assert words["reference"] in ask.text
    sure = await shop.say(OWNER, "TX-2026-0001")
    before = len(shop.emu.messages(DIST))
    done = await shop.tap(OWNER, sure, words["paid_sure"])
    assert words["empty"] in done.text
    told = await shop.emu.wait_for(DIST, after=before)
    assert words["told_paid"].format(pid) in told.text and "TX-2026-0001" in told.text
    assert await _balance(shop, dist, AccountKind.PAID_OUT) == 1200
    assert await _balance(shop, dist, AccountKind.WITHDRAWING) == 0
    await _clean(shop)
    # the same confirmation again: already decided, nothing moves twice
    qid = await shop.tap_data(OWNER, sure, PayoutCb(action="paidok", payout_id=pid).pack())
    assert words["input_stale"] in str((await shop.answer_to(qid))["text"])
    qid = await shop.tap_data(OWNER, queue, PayoutCb(action="approve", payout_id=pid).pack())
    assert words["decided"] in str((await shop.answer_to(qid))["text"])
    assert (await shop.services.payouts.line(pid)).payout.status is PayoutStatus.PAID
    assert await _balance(shop, dist, AccountKind.PAID_OUT) == 1200


async def test_a_rejected_request_gives_the_money_back_and_the_distributor_reads_why(
    shop: Shop, words: dict[str, str]
) -> None:
    dist = await _setup(shop, words)
    pid, _ = await _request(shop, words, "PayPal dora@example.com")
    queue = await shop.say(OWNER, "/payouts")
    ask = await shop.tap(OWNER, queue, words["reject"].format(pid))
    assert words["reason"].format(pid) in ask.text
    invalid = await shop.say(OWNER, "x" * 201)
    assert words["invalid"] in invalid.text
    sure = await shop.say(OWNER, "wrong account")
    before = len(shop.emu.messages(DIST))
    done = await shop.tap(OWNER, sure, words["reject_sure"])
    assert words["empty"] in done.text
    told = await shop.emu.wait_for(DIST, after=before)
    assert words["told_rejected"].format(pid) in told.text
    assert await _balance(shop, dist, AccountKind.AVAILABLE) == 1200
    assert await _balance(shop, dist, AccountKind.WITHDRAWING) == 0
    await _clean(shop)
    screen = await shop.say(DIST, "/withdraw")  # the money can be asked for again
    assert words["ready"] in screen.text and screen.button(words["pick"])


async def test_a_request_a_refund_took_the_commission_back_from_is_not_approved_but_rejected(
    shop: Shop, words: dict[str, str]
) -> None:
    """The referral's order is refunded after DIST asked for the 12.00 it earned: the queue says so, Approve
    is refused with why, and rejecting it nets the clawback (nothing left to withdraw, nothing owed)."""
    dist = await _setup(shop, words)
    pid, _ = await _request(shop, words, "PayPal dora@example.com")
    bought = await shop.services.ctx.read(lambda uow: uow.repo.payments.get("telegram", "ch-1"))
    assert bought is not None
    await shop.services.refunds.request_refund(bought.order_ref, actor="telegram:7")
    assert await _balance(shop, dist, AccountKind.AVAILABLE) == -1200
    queue = await shop.say(OWNER, "/payouts")
    assert words["owes"] in queue.text, queue.text
    qid = await shop.tap_data(OWNER, queue, PayoutCb(action="approve", payout_id=pid).pack())
    answer = await shop.answer_to(qid)
    assert answer["show_alert"] and words["uncovered"].format(pid) in str(answer["text"]), answer
    assert (await shop.services.payouts.line(pid)).payout.status is PayoutStatus.REQUESTED
    ask = await shop.tap(OWNER, queue, words["reject"].format(pid))
    assert words["reason"].format(pid) in ask.text and words["owes"] in ask.text
    sure = await shop.say(OWNER, "wrong account")
    done = await shop.tap(OWNER, sure, words["reject_sure"])
    assert words["empty"] in done.text
    assert await _balance(shop, dist, AccountKind.AVAILABLE) == 0
    assert await _balance(shop, dist, AccountKind.WITHDRAWING) == 0
    await _clean(shop)
    screen = await shop.say(DIST, "/withdraw")
    assert not [b for b in screen.buttons if words["pick"] in b["text"]], screen.buttons


async def test_hostile_withdrawal_input_gets_a_clear_answer_and_changes_nothing(
    shop: Shop, words: dict[str, str]
) -> None:
    dist = await _setup(shop, words, tap_rate=100)
    screen = await shop.say(DIST, "/withdraw")
    for forged in ("w:go:USD", "w:pick:XTR", "w:pick:EUR"):
        qid = await shop.tap_data(DIST, screen, forged)
        assert (await shop.answer_to(qid))["show_alert"], forged
    for forged in ("w:pick:usd", "w:pick:", "w:go:" + "A" * 40, "w:nuke:USD", "w:stop:USD"):
        qid = await shop.tap_data(DIST, screen, forged)
        assert words["out_of_date"] in str((await shop.answer_to(qid))["text"]), forged
    ask = await shop.tap(DIST, screen, words["pick"])
    assert words["ask"] in ask.text
    for text in ("\u200b\u200d\u2066", "x" * 201):
        reply = await shop.say(DIST, text)
        assert words["invalid"] in reply.text
    orders = await shop.say(DIST, "/orders")  # a command in the middle goes where it is meant to
    assert words["invalid"] not in orders.text
    stopped = await shop.tap(DIST, ask, "✖️")
    assert stopped.text and not stopped.buttons
    await asyncio.sleep(0.2)
    assert await shop.services.payouts.mine(dist) == []
    assert await _balance(shop, dist, AccountKind.AVAILABLE) == 1200
    nobody = await shop.say(BUYER, "/withdraw")  # no balance: said so, no button
    assert words["none"] in nobody.text and not nobody.buttons


async def test_buyers_and_operators_never_reach_the_payout_queue(shop: Shop, words: dict[str, str]) -> None:
    dist = await _setup(shop, words, tap_rate=100)
    pid, _ = await _request(shop, words, "Alipay 138 0000 0000")
    menu = await shop.say(DIST, "/start")
    op_menu = await shop.say(OPERATOR, "/start")
    assert words["unknown"] in (await shop.say(DIST, "/payouts")).text
    assert words["not_role"] in (await shop.say(OPERATOR, "/payouts")).text
    for data in (
        PayoutCb(action="list").pack(),
        PayoutCb(action="approve", payout_id=pid).pack(),
        PayoutCb(action="reject", payout_id=pid).pack(),
        PayoutCb(action="rejectok", payout_id=pid).pack(),
        "apo:approve:0:0",
        "apo:nuke:1:0",
    ):
        answer = await shop.answer_to(await shop.tap_data(DIST, menu, data))
        assert answer["show_alert"], data
        answer = await shop.answer_to(await shop.tap_data(OPERATOR, op_menu, data))
        assert words["not_role"] in str(answer["text"]), data
    assert (await shop.services.payouts.line(pid)).payout.status is PayoutStatus.REQUESTED
    assert await _balance(shop, dist, AccountKind.WITHDRAWING) == 1200
    assert "payouts" not in shop.emu.menu(OPERATOR, words["lang"])
    await _clean(shop)
