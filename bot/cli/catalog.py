"""``keyshop product …`` and ``keyshop category …``: the catalog."""

from __future__ import annotations

import argparse
import json

from bot.cli.common import Subparsers, out, with_shop
from bot.settings import Settings
from core.models import DeliveryKind
from core.rates import commission_rates_bp, format_rates
from core.services import Services
from core.services.catalog import ProductDraft
from handlers.money import format_amount, parse_amount


async def cmd_product_add(args: argparse.Namespace, settings: Settings) -> int:
    draft = ProductDraft(
        name=args.name,
        description=args.description,
        price=parse_amount(args.price, settings.shop.shop_currency) if args.price else 0,
        price_stars=args.stars,
        category_id=args.category,
        active=not args.inactive,
        delivery_kind=DeliveryKind(args.kind),
        validity_days=args.validity_days,
        min_qty=args.min_qty,
        max_qty=args.max_qty,
        low_stock_threshold=args.low_stock,
        user_limit=args.user_limit,
        user_limit_hours=args.user_limit_hours,
        daily_limit=args.daily_limit,
        requires_phone=args.requires_phone,
        commission_rates=args.commission_rates,
    )

    async def go(s: Services) -> int:
        pid = await s.catalog.add_product(draft, actor="cli")
        if args.shared_key:
            await s.stock.set_shared_key(pid, args.shared_key, actor="cli")
        out(str(pid))
        return 0

    return await with_shop(settings, go)


async def cmd_product_list(args: argparse.Namespace, settings: Settings) -> int:
    async def go(s: Services) -> int:
        products = await s.catalog.products()
        levels = {lv.product_id: lv for lv in await s.stock.levels()}
        cur = settings.shop.shop_currency
        if args.json:
            rows = [
                {
                    "id": p.id,
                    "name": p.name,
                    "category_id": p.category_id,
                    "price": p.price,
                    "currency": cur,
                    "price_stars": p.price_stars,
                    "active": p.active,
                    "delivery_kind": p.delivery_kind.value,
                    "validity_days": p.validity_days,
                    "min_qty": p.min_qty,
                    "max_qty": p.max_qty,
                    "commission_rates": _percent(p.commission_rates),
                    "available": levels[p.id].available,
                }
                for p in products
            ]
            out(json.dumps(rows, ensure_ascii=False, indent=2))
            return 0
        if not products:
            out("no products yet: keyshop product add --name NAME --price 9.90 --stars 50")
            return 0
        out(f"{'id':>4}  {'name':<28} {'price':>12} {'stars':>6} {'kind':<7} {'stock':>8}  state")
        for p in products:
            stock = str(levels[p.id].available) if p.delivery_kind is DeliveryKind.UNIQUE else "-"
            out(
                f"{p.id:>4}  {p.name[:28]:<28} {format_amount(p.price, cur):>12} {p.price_stars:>6} "
                f"{p.delivery_kind.value:<7} {stock:>8}  {'active' if p.active else 'inactive'}"
            )
        return 0

    return await with_shop(settings, go)


async def cmd_product_set_kind(args: argparse.Namespace, settings: Settings) -> int:
    async def go(s: Services) -> int:
        await s.catalog.update_product(args.product, actor="cli", delivery_kind=DeliveryKind(args.kind))
        return 0

    return await with_shop(settings, go)


async def cmd_product_set_commission(args: argparse.Namespace, settings: Settings) -> int:
    async def go(s: Services) -> int:
        await s.catalog.update_product(args.product, actor="cli", commission_rates=args.rates)
        return 0

    return await with_shop(settings, go)


def _percent(rates_bp: tuple[int, ...] | None) -> str | None:
    return None if rates_bp is None else format_rates(rates_bp)


def _rates(text: str) -> tuple[int, ...] | None:
    """``10,5`` (percent per level) or ``none`` (the shop's COMMISSION_RATES)."""
    if text.strip().lower() == "none":
        return None
    try:
        return commission_rates_bp(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


async def cmd_category_add(args: argparse.Namespace, settings: Settings) -> int:
    async def go(s: Services) -> int:
        out(str(await s.catalog.add_category(args.name, args.description, args.position)))
        return 0

    return await with_shop(settings, go)


async def cmd_category_list(args: argparse.Namespace, settings: Settings) -> int:
    async def go(s: Services) -> int:
        cats = await s.catalog.categories(active_only=False)
        if args.json:
            rows = [{"id": c.id, "name": c.name, "position": c.position, "active": c.active} for c in cats]
            out(json.dumps(rows, ensure_ascii=False, indent=2))
        for c in [] if args.json else cats:
            out(f"{c.id:>4}  {c.name}")
        return 0

    return await with_shop(settings, go)


def register(sub: Subparsers) -> None:
    prod = sub.add_parser("product", help="products").add_subparsers(dest="product_command", metavar="ACTION")
    add = prod.add_parser("add", help="add a product; prints its id")
    add.add_argument("--name", required=True)
    add.add_argument("--description", default="")
    add.add_argument("--price", help="price in SHOP_CURRENCY, e.g. 9.90")
    add.add_argument("--stars", type=int, default=0, help="price in Telegram Stars")
    add.add_argument("--category", type=int, help="category id")
    add.add_argument("--kind", choices=[k.value for k in DeliveryKind], default="unique")
    add.add_argument("--shared-key", help="the key every buyer gets (with --kind shared)")
    add.add_argument("--validity-days", type=int, help="membership codes: days of validity after delivery")
    add.add_argument("--min-qty", type=int, default=1)
    add.add_argument("--max-qty", type=int, default=10)
    add.add_argument("--low-stock", type=int, default=0, help="warn when available stock falls to this")
    add.add_argument("--user-limit", type=int, help="units one buyer may buy within --user-limit-hours")
    add.add_argument("--user-limit-hours", type=int)
    add.add_argument("--daily-limit", type=int, help="units sold per day (SHOP_TIMEZONE) at most")
    add.add_argument("--requires-phone", action="store_true", help="buyers must share a phone number")
    add.add_argument("--inactive", action="store_true", help="create switched off")
    add.add_argument(
        "--commission-rates",
        type=_rates,
        metavar="RATES",
        help="its own commission percent per level, e.g. 10,5 (0: none on it); default: COMMISSION_RATES",
    )
    add.set_defaults(handler=cmd_product_add)
    ls = prod.add_parser("list", help="list products")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(handler=cmd_product_list)
    kind = prod.add_parser(
        "set-kind", help="change a product's delivery kind (refused while orders are open)"
    )
    kind.add_argument("product", type=int, help="product id")
    kind.add_argument("kind", choices=[k.value for k in DeliveryKind])
    kind.set_defaults(handler=cmd_product_set_kind)
    com = prod.add_parser("set-commission", help="set a product's own commission rates, or none")
    com.add_argument("product", type=int, help="product id")
    com.add_argument(
        "rates",
        type=_rates,
        help="percent per level, e.g. 10,5 (0: no commission on it), or none: COMMISSION_RATES",
    )
    com.set_defaults(handler=cmd_product_set_commission)

    cat = sub.add_parser("category", help="categories").add_subparsers(
        dest="category_command", metavar="ACTION"
    )
    cadd = cat.add_parser("add", help="add a category; prints its id")
    cadd.add_argument("name")
    cadd.add_argument("--description", default="")
    cadd.add_argument("--position", type=int, default=0, help="lower comes first in the catalog")
    cadd.set_defaults(handler=cmd_category_add)
    clist = cat.add_parser("list", help="list categories")
    clist.add_argument("--json", action="store_true")
    clist.set_defaults(handler=cmd_category_list)
