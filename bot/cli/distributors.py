"""``keyshop distributors``: every distributor's money per currency, as the admins' /distributors reads it
(``DistributorService.report``).

    keyshop distributors [--json]

One row per distributor and currency (a distributor with no money yet: one row without a currency):
earned (commissions that stand), then each account's balance (pending, available, paid out, and any other
the distributor holds: spent, …), their rate override (percent per level, ``-`` for the shop's
COMMISSION_RATES) and whether they are blocked. ``--json`` prints JSON Lines, one object per row, amounts in
minor units (Stars whole): ``user_id``, ``channel``, ``external_id``, ``username``, ``currency``, ``earned``,
one key per account kind (``pending``, ``available``, ``spent``, ``paid_out``…), ``rates`` (``"12,6"`` or
null), ``rates_bp`` (``[1200, 600]`` or null), ``blocked``, and the funnel: ``opens``, ``starts``,
``buyers``, ``orders``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bot.cli.common import Subparsers, out, with_shop
from bot.settings import Settings
from core.models import AccountKind
from core.rates import format_rates
from core.repositories.distributors import DistributorSummary, Earnings
from core.services import Services
from handlers.money import format_amount

KINDS = [k for k in AccountKind if k is not AccountKind.COMMISSION_EXPENSE]  # what a distributor holds
ALWAYS = (AccountKind.PENDING, AccountKind.AVAILABLE, AccountKind.PAID_OUT)


def _rows(summaries: list[DistributorSummary]) -> list[tuple[DistributorSummary, Earnings | None]]:
    return [(s, e) for s in summaries for e in (s.earnings or (None,))]


def _json(s: DistributorSummary, e: Earnings | None) -> dict[str, Any]:
    u, f = s.user, s.funnel
    row: dict[str, Any] = {
        "user_id": u.id,
        "channel": u.channel,
        "external_id": u.external_id,
        "username": u.username,
        "currency": e.currency if e else None,
        "earned": e.earned if e else 0,
    }
    row.update({k.value: e.balance(k) if e else 0 for k in KINDS})
    row.update(
        rates=format_rates(s.rates) if s.rates is not None else None,
        rates_bp=list(s.rates) if s.rates is not None else None,
        blocked=s.blocked,
        opens=f.opens,
        starts=f.starts,
        buyers=f.buyers,
        orders=f.orders,
    )
    return row


def _table(rows: list[tuple[DistributorSummary, Earnings | None]]) -> None:
    kinds = [k for k in KINDS if k in ALWAYS or any(e is not None and e.balance(k) for _, e in rows)]
    head = f"{'user':>6}  {'who':<28} {'cur':<4} {'earned':>12}"
    head += "".join(f" {k.value:>12}" for k in kinds) + f"  {'rates':<9} blocked"
    out(head)
    for s, e in rows:
        u = s.user
        who = f"{u.channel}:{u.external_id}" + (f" @{u.username}" if u.username else "")

        def money(minor: int, e: Earnings | None = e) -> str:
            return format_amount(minor, e.currency) if e is not None else "-"

        line = f"{u.id:>6}  {who[:28]:<28} {(e.currency if e else '-'):<4} {money(e.earned if e else 0):>12}"
        line += "".join(f" {money(e.balance(k) if e else 0):>12}" for k in kinds)
        rates = format_rates(s.rates) if s.rates is not None else "-"
        out(f"{line}  {rates:<9} {'yes' if s.blocked else 'no'}")


async def cmd_distributors(args: argparse.Namespace, settings: Settings) -> int:
    async def go(s: Services) -> int:
        rows = _rows(await s.distributors.report())
        if args.json:
            for summary, earnings in rows:
                out(json.dumps(_json(summary, earnings), ensure_ascii=False))
        elif rows:
            _table(rows)
        else:
            out("no distributors yet")
        return 0

    return await with_shop(settings, go)


def register(sub: Subparsers) -> None:
    p = sub.add_parser("distributors", help="every distributor's commissions per currency")
    p.add_argument("--json", action="store_true", help="JSON Lines: one object per distributor and currency")
    p.set_defaults(handler=cmd_distributors)
