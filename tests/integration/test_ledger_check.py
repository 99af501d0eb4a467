"""``keyshop ledger check`` on both databases: clean (exit 0, "ledger clean") after a real referral
purchase, a refund and a settlement; each kind of drift, made on purpose under the services (an unbalanced
posting, a tampered commission, a missing one, ...), is one line naming it, and the exit code is 1."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update

from bot.cli import main
from core import tables as t
from core.clock import FrozenClock
from core.models import Order
from core.repositories.ledger import LedgerRepo
from core.roles import Grant, Role
from core.services import Services
from tests.conftest import buyer, in_write, pay, refer, sql, stocked

Tamper = Callable[[Services, Order], Any]


@pytest.fixture(autouse=True)
def _cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("DATABASE_URL", "VAULT_KEYS", "BOT_TOKEN", "ADMIN_IDS", "SHOP_CURRENCY", "COMMISSION_RATES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "cli-data"))


def _url(shop: Services) -> str:
    return shop.ctx.db.url.render_as_string(hide_password=False)


async def _check(shop: Services, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, list[str]]:
    """Run ``keyshop ledger check`` on the shop's database: the exit code and the lines it printed."""
    code = await asyncio.to_thread(main, ["ledger", "check", "--database-url", _url(shop), *extra])
    out, _err = capsys.readouterr()
    return code, out.splitlines()


async def _referred_order(shop: Services, charge: str = "ch-1") -> Order:
    """A buyer two levels below distributors buys for 10.00: 1.00 and 0.50 in commission."""
    top = await buyer(shop, "9001")
    mid = await buyer(shop, "9002")
    uid = await buyer(shop, "9003")
    await refer(shop, mid, top)
    await refer(shop, uid, mid)
    order = await shop.checkout.checkout(uid, await stocked(shop, 3, price=1000), 1, "USD")
    await pay(shop, order, charge=charge)
    return await shop.orders.get(order.ref)


async def test_a_clean_ledger_after_a_purchase_a_refund_and_a_settlement_exits_zero(
    any_shop: Services, clock: FrozenClock, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = any_shop
    order = await _referred_order(shop)
    pid = order.product_id
    second = await shop.checkout.checkout(order.user_id, pid, 1, "USD")
    await pay(shop, second, charge="ch-2")
    third = await shop.checkout.checkout(order.user_id, pid, 1, "USD")
    await pay(shop, third, charge="ch-3")
    await shop.refunds.request_refund(order.ref, actor="a")  # reversed while pending
    clock.advance(days=8)
    assert await shop.ledger.settle() == 4  # the other two orders' levels
    await shop.refunds.request_refund(second.ref, actor="a")  # clawed back after settlement
    marked = await shop.checkout.checkout(order.user_id, pid, 1, "USD")
    await shop.order_desk.mark_paid(marked.ref, marked.amount, "cash", grant=Grant(Role.ADMIN), actor="a")
    assert await _check(shop, capsys) == (0, ["ledger clean"])
    code, lines = await _check(shop, capsys, "--json")
    assert code == 0 and json.loads(lines[0])["clean"] is True and json.loads(lines[0])["drift"] == []


async def test_an_unbalanced_posting_is_drift(any_shop: Services, capsys: pytest.CaptureFixture[str]) -> None:
    shop = any_shop
    order = await _referred_order(shop)
    assert (await _check(shop, capsys))[0] == 0
    (posting_id,) = await sql(
        shop,
        insert(t.ledger_postings)
        .values(key="by-hand", kind="payout", order_id=None, actor="sql", at=order.created_at)
        .returning(t.ledger_postings.c.id),
    )
    (account,) = await sql(shop, select(t.ledger_accounts.c.id).where(t.ledger_accounts.c.owner_id.is_(None)))
    await sql(
        shop,
        insert(t.ledger_entries).values(
            posting_id=posting_id[0], account_id=account[0], amount=5, currency="USD"
        ),
    )
    code, lines = await _check(shop, capsys)
    assert code == 1 and lines == [f"posting {posting_id[0]} (by-hand) sums to 5 USD"]


async def test_a_tampered_commission_amount_is_drift(
    any_shop: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = any_shop
    order = await _referred_order(shop)
    c = t.commissions
    await sql(shop, update(c).where(c.c.order_id == order.id, c.c.level == 1).values(amount=101))
    code, lines = await _check(shop, capsys)
    assert code == 1
    assert f"order {order.ref} level 1: amount 101 USD, but floor(1000 × 1000 / 10000) is 100" in lines
    # and what follows from it: the posting moved 100, the distributor's pending balance is 100
    moved = f"order {order.ref} level 1: posting commission:{order.id}:1 does not move 101 USD"
    assert any(line.startswith(moved) for line in lines)
    assert any("pending USD: entries sum to 100, commissions to 101" in line for line in lines)


async def test_a_missing_commission_is_drift(any_shop: Services, capsys: pytest.CaptureFixture[str]) -> None:
    shop = any_shop
    order = await _referred_order(shop)
    c, p, e = t.commissions, t.ledger_postings, t.ledger_entries
    (mid,) = await sql(shop, select(c.c.beneficiary_id).where(c.c.order_id == order.id, c.c.level == 1))

    def erase(uow: Any) -> None:  # the commission, its posting and the posting's entries: as if never made
        key = f"commission:{order.id}:1"
        pid = uow.repo.conn.execute(select(p.c.id).where(p.c.key == key)).scalar_one()
        uow.repo.conn.execute(delete(e).where(e.c.posting_id == pid))
        uow.repo.conn.execute(delete(p).where(p.c.id == pid))
        uow.repo.conn.execute(delete(c).where(c.c.order_id == order.id, c.c.level == 1))

    await in_write(shop, erase)
    code, lines = await _check(shop, capsys)
    assert code == 1
    assert lines == [
        f"order {order.ref} level 1: no commission, but 100 USD is owed to user {mid[0]} (1000 bp of 1000)"
    ]


def _pay_no_commission(shop: Services, order: Order) -> Any:
    """The order's payment turned into a "mark paid" without commission: the commission it has is drift."""
    p = t.payments
    return sql(
        shop, update(p).where(p.c.order_id == order.id).values(provider="manual", earns_commission=False)
    )


def _to_someone_else(shop: Services, order: Order) -> Any:
    c = t.commissions
    return sql(
        shop, update(c).where(c.c.order_id == order.id, c.c.level == 2).values(beneficiary_id=order.user_id)
    )


def _settled_without_posting(shop: Services, order: Order) -> Any:
    c = t.commissions
    return sql(shop, update(c).where(c.c.order_id == order.id, c.c.level == 2).values(status="available"))


def _order_cancelled(shop: Services, order: Order) -> Any:
    return sql(shop, update(t.orders).where(t.orders.c.id == order.id).values(status="cancelled"))


def _rate_changed(shop: Services, order: Order) -> Any:
    c = t.commissions
    return sql(shop, update(c).where(c.c.order_id == order.id, c.c.level == 2).values(rate_bp=600))


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (_pay_no_commission, "level 1: the order earns no commission (nothing paid, or marked paid without"),
        (_to_someone_else, "level 2: to the buyer themself"),
        (_settled_without_posting, "level 2: available, but it has no settlement posting (settlement:"),
        (_order_cancelled, "level 1: a commission on an order never delivered (cancelled)"),
        (_rate_changed, "level 2: rate 600 bp, but its delivery applied 500 bp"),
    ],
)
async def test_each_broken_commission_rule_is_one_line_of_drift(
    any_shop: Services, capsys: pytest.CaptureFixture[str], tamper: Tamper, expected: str
) -> None:
    shop = any_shop
    order = await _referred_order(shop)
    await tamper(shop, order)
    code, lines = await _check(shop, capsys)
    assert code == 1 and any(line.startswith(f"order {order.ref} {expected}") for line in lines), lines


async def test_several_databases_are_checked_in_one_run_each_line_naming_its_own(
    shop: Services, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    order = await _referred_order(shop)
    c = t.commissions
    await sql(shop, update(c).where(c.c.order_id == order.id, c.c.level == 2).values(amount=49))
    missing = tmp_path / "nowhere" / "shop.db"
    code = await asyncio.to_thread(
        main, ["ledger", "check", "--json", "--database-url", _url(shop), "--database-url", _url(shop)]
    )
    out, _ = capsys.readouterr()
    reports = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and [r["clean"] for r in reports] == [False, False]
    assert reports[0]["database"] == _url(shop) and any("amount 49 USD" in d for d in reports[0]["drift"])
    code = await asyncio.to_thread(main, ["ledger", "check", "--database-url", f"sqlite:///{missing}"])
    _, err = capsys.readouterr()
    assert code == 1 and "no such database" in err and not missing.parent.exists()


async def test_a_check_reading_while_commissions_settle_sees_one_moment_and_reports_no_drift(
    any_shop: Services, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check compares what the commissions say with what the accounts hold, in two reads. A settlement
    committed between them (here, deterministically: the check waits there until it did) must not show as
    drift: both reads see the snapshot the check began in (PostgreSQL: REPEATABLE READ)."""
    shop = any_shop
    await _referred_order(shop)
    clock.advance(days=7)
    reached, go = threading.Event(), threading.Event()
    totals = LedgerRepo.commission_totals

    def paused(repo: LedgerRepo) -> Any:
        out = totals(repo)
        reached.set()
        assert go.wait(10)
        return out

    monkeypatch.setattr(LedgerRepo, "commission_totals", paused)
    checking = asyncio.ensure_future(shop.ledger.check())
    assert await asyncio.to_thread(reached.wait, 10)
    assert await shop.ledger.settle() == 2  # committed while the check is between its two reads
    go.set()
    assert await checking == []
    monkeypatch.undo()
    assert await shop.ledger.check() == []  # and the settled ledger is clean as well


async def test_rates_changed_after_delivery_are_no_drift_but_a_commission_rewritten_to_them_is(
    any_shop: Services,
    clock: FrozenClock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Everything that decides a rate changes after the delivery: the product's own rates, both
    distributors' overrides, a block, a ban, and COMMISSION_RATES itself. The check judges the order by the
    rates its delivery applied, so it stays clean (pending and settled alike); a commission rewritten to
    today's rates (rate, amount and posting agreeing with each other) is drift."""
    shop = any_shop
    order = await _referred_order(shop)  # 10 % and 5 % of 10.00
    settled = await shop.checkout.checkout(order.user_id, order.product_id, 1, "USD")
    await pay(shop, settled, charge="ch-2")
    clock.advance(days=7)
    assert await shop.ledger.settle() == 4
    later = await shop.checkout.checkout(order.user_id, order.product_id, 1, "USD")
    await pay(shop, later, charge="ch-3")  # still pending
    mid, top = [c.beneficiary_id for c in await shop.ledger.commissions(order.id)]
    await shop.catalog.update_product(order.product_id, actor="cli", commission_rates=(2500, 1500))
    await shop.distributors.set_rates(mid, "30,20", actor="cli")
    await shop.distributors.set_rates(top, "40,25", actor="cli")
    await shop.distributors.set_blocked(top, True, actor="cli")
    await shop.users.set_blocklisted(mid, True)
    monkeypatch.setenv("COMMISSION_RATES", "20,10")
    assert await _check(shop, capsys) == (0, ["ledger clean"])

    def rewritten(uow: Any) -> None:  # level 1 of the pending order as if paid at today's product rate
        c, p, e = t.commissions, t.ledger_postings, t.ledger_entries
        conn = uow.repo.conn
        level_1 = (c.c.order_id == later.id) & (c.c.level == 1)
        conn.execute(update(c).where(level_1).values(rate_bp=2500, amount=250))
        posting = select(p.c.id).where(p.c.key == f"commission:{later.id}:1").scalar_subquery()
        conn.execute(update(e).where(e.c.posting_id == posting, e.c.amount > 0).values(amount=250))
        conn.execute(update(e).where(e.c.posting_id == posting, e.c.amount < 0).values(amount=-250))

    await in_write(shop, rewritten)
    code, lines = await _check(shop, capsys)
    assert code == 1
    assert f"order {later.ref} level 1: rate 2500 bp, but its delivery applied 1000 bp" in lines


async def test_a_charge_refused_as_someone_elses_and_paid_back_is_not_counted_in_a_refunded_orders_base(
    any_shop: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    """A forwarded invoice paid by someone else is refused and paid back to them (``refunded``, like the
    order's own charge once the order is refunded): it never paid for the order, so the commissions'
    base is still what the buyer's own charge brought in."""
    shop = any_shop
    order = await _referred_order(shop)
    stranger = await buyer(shop, "9004")
    refused = await shop.payments.confirm_payment(
        "telegram", "ch-stranger", order.ref, order.amount, "USD", payer_id=stranger
    )
    assert refused.reason == "not_owner"
    await shop.refunds.complete_refund("telegram", "ch-stranger", actor="telegram")  # paid back to them
    assert await _check(shop, capsys) == (0, ["ledger clean"])
    await shop.refunds.request_refund(order.ref, actor="a")
    await shop.refunds.complete_refund("telegram", "ch-1", actor="telegram")
    assert await _check(shop, capsys) == (0, ["ledger clean"])
