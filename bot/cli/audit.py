"""``keyshop audit``: the audit trail, newest first, as the owners' /audit shows it.

    keyshop audit [--order REF] [--actor ACTOR] [--limit N] [--json]

``--json`` prints JSON Lines: one object per entry and line (``id``, ``at`` (ISO 8601 in SHOP_TIMEZONE, with
its offset), ``actor``, ``action``, ``order_ref``, ``product_id``, ``product_name``, ``detail``), so a
pipe can read entries as they come (``jq``, ``grep``). Without it: a table. Both print the raw action names
(``keys_revealed``), the same in every language, for scripts; the chat's /audit translates them. Audit
rows hold key ids, never keys."""

from __future__ import annotations

import argparse
import json

from bot.cli.common import Subparsers, out, with_shop
from bot.settings import Settings
from core.services import Services
from core.services.audit import MAX_PAGE_SIZE


async def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    async def go(s: Services) -> int:
        page = await s.audit.recent(order_ref=args.order, actor=args.actor, limit=args.limit)
        tz = s.ctx.config.timezone
        for e in page.entries:
            at = e.at.astimezone(tz)
            if args.json:
                row = {
                    "id": e.id,
                    "at": at.isoformat(),
                    "actor": e.actor,
                    "action": e.action,
                    "order_ref": e.order_ref,
                    "product_id": e.product_id,
                    "product_name": e.product_name,
                    "detail": e.detail,
                }
                out(json.dumps(row, ensure_ascii=False, sort_keys=False))
                continue
            where = " ".join(
                x
                for x in (
                    f"order {e.order_ref}" if e.order_ref else "",
                    f"product #{e.product_id} {e.product_name or ''}".rstrip() if e.product_id else "",
                )
                if x
            )
            detail = json.dumps(e.detail, ensure_ascii=False, separators=(",", ":"))
            out(f"{e.id:>6}  {at:%Y-%m-%d %H:%M:%S}  {e.actor[:20]:<20} {e.action:<18} {where}  {detail}")
        if not args.json and not page.entries:
            out("nothing recorded")
        return 0

    return await with_shop(settings, go)


def _limit(text: str) -> int:
    n = int(text)
    if not 1 <= n <= MAX_PAGE_SIZE:
        raise argparse.ArgumentTypeError(f"from 1 to {MAX_PAGE_SIZE}")
    return n


def register(sub: Subparsers) -> None:
    p = sub.add_parser("audit", help="the audit trail, newest first")
    p.add_argument("--order", metavar="REF", help="only this order's entries")
    p.add_argument("--actor", help="only this actor's entries: telegram:ID, user:ID, cli, system, outbox")
    p.add_argument("--limit", type=_limit, default=50, help=f"entries (default 50, at most {MAX_PAGE_SIZE})")
    p.add_argument("--json", action="store_true", help="JSON Lines: one object per entry")
    p.set_defaults(handler=cmd_audit)
