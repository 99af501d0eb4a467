"""How a distributor's figures read, the same on their /invite dashboard and on the admins' /distributors:
the funnel, money per currency (earned and each account's balance), a commission's state.

Which balances show: pending, available and paid out always; any other account a distributor holds (spent
as shop balance, money being withdrawn…) when it is not zero, each under its ``ledger-kind-<kind>`` label
(a kind with none shows as it is stored). A new account kind needs its label, nothing else here."""

from __future__ import annotations

from core.models import STARS, AccountKind, CommissionStatus
from core.repositories.distributors import Earnings, Funnel
from handlers.money import format_amount
from handlers.telegram.ui.text import tr, tr_plain

ALWAYS = (AccountKind.PENDING, AccountKind.AVAILABLE, AccountKind.PAID_OUT)
_NOT_A_DISTRIBUTORS = frozenset({AccountKind.COMMISSION_EXPENSE})  # the shop's own


def kind_label(kind: AccountKind) -> str:
    """An account kind in the reader's language (plain text)."""
    key = f"ledger-kind-{kind.value}"
    label = tr_plain(key)
    return kind.value if label == key else label


def status_label(status: CommissionStatus) -> str:
    """A commission's state in the reader's language (plain text)."""
    return tr_plain(f"commission-status-{status.value}")


def shown_kinds(e: Earnings) -> list[AccountKind]:
    return [k for k in AccountKind if k not in _NOT_A_DISTRIBUTORS and (k in ALWAYS or e.balance(k))]


def funnel_line(f: Funnel) -> str:
    return tr("earnings-funnel", opens=f.opens, starts=f.starts, buyers=f.buyers, orders=f.orders)


def currency_name(currency: str) -> str:
    """A currency as a heading: its ISO code, or Stars by name (plain text)."""
    return tr_plain("earnings-stars") if currency == STARS else currency


def money_line(e: Earnings, locale: str = "en") -> str:
    """One currency: earned, then each shown balance."""

    def amount(minor: int) -> str:
        return format_amount(minor, e.currency, locale)

    parts = [tr_plain("earnings-earned", amount=amount(e.earned))]
    for k in shown_kinds(e):
        parts.append(tr_plain("earnings-balance", kind=kind_label(k), amount=amount(e.balance(k))))
    return tr("earnings-currency", currency=currency_name(e.currency), parts=" · ".join(parts))
