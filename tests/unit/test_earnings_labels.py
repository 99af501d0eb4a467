"""How a distributor's money reads on /invite and /distributors: every account kind a distributor can hold
and every commission state has a label in both languages; pending, available and paid out always show,
other accounts (spent, or one a later feature adds) only when they hold something."""

from __future__ import annotations

import pytest
from babel.messages.pofile import read_po

from bot.i18n import SOURCE, build_i18n
from core.models import AccountKind, CommissionStatus
from core.repositories.distributors import Earnings
from handlers.telegram.ui.earnings import kind_label, money_line, shown_kinds, status_label

DISTRIBUTORS_KINDS = [k for k in AccountKind if k is not AccountKind.COMMISSION_EXPENSE]


def _catalog(lang: str) -> set[str]:
    with (SOURCE / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return {m.id for m in read_po(f) if m.id}


@pytest.mark.parametrize("lang", ["en", "zh_CN"])
def test_every_kind_a_distributor_holds_and_every_commission_state_has_a_label(lang: str) -> None:
    ids = _catalog(lang)
    assert {f"ledger-kind-{k.value}" for k in DISTRIBUTORS_KINDS} <= ids
    assert {f"commission-status-{s.value}" for s in CommissionStatus} <= ids


def test_pending_available_and_paid_out_always_show_and_the_others_when_not_zero() -> None:
    empty = Earnings("USD")
    assert shown_kinds(empty) == [AccountKind.PENDING, AccountKind.AVAILABLE, AccountKind.PAID_OUT]
    spent = Earnings("USD", 10, {AccountKind.SPENT: 300})
    assert shown_kinds(spent) == [
        AccountKind.PENDING,
        AccountKind.AVAILABLE,
        AccountKind.SPENT,
        AccountKind.PAID_OUT,
    ]


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "💰 <b>USD</b>: earned $1.50 · ⏳ pending $0.50 · ✅ available $1.00 · 💸 paid out $0.00"),
        (
            "zh_CN",
            "💰 <b>Telegram 星星</b>：累计佣金 7 ⭐ · ⏳ 待结算 0 ⭐ · ✅ 可提现 -2 ⭐ · 💸 已打款 9 ⭐",
        ),
    ],
)
def test_a_currencys_line_reads_in_the_readers_language(locale: str, expected: str) -> None:
    i18n = build_i18n()
    usd = Earnings("USD", 150, {AccountKind.PENDING: 50, AccountKind.AVAILABLE: 100})
    stars = Earnings("XTR", 7, {AccountKind.AVAILABLE: -2, AccountKind.PAID_OUT: 9})
    with i18n.context(), i18n.use_locale(locale):
        assert money_line(usd if locale == "en" else stars) == expected
        assert status_label(CommissionStatus.CLAWED_BACK) != "commission-status-clawed_back"
        assert kind_label(AccountKind.PENDING).startswith("⏳")
