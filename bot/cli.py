"""The ``keyshop`` command line (also ``python -m bot``). Errors are one line and a non-zero exit."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bot.runtime import close_shop, open_shop
from bot.settings import Settings, SettingsError, load_settings
from core import migrate
from core.db import Database
from core.errors import ShopError
from core.models import DeliveryKind, ImportReport
from core.money import format_amount, parse_amount
from core.services import Services
from core.services.catalog import ProductDraft

log = logging.getLogger("keyshop")

Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


async def _with_shop(settings: Settings, fn: Callable[[Services], Awaitable[int]]) -> int:
    services = await open_shop(settings)
    try:
        return await fn(services)
    finally:
        await close_shop(services)


# ---------------------------------------------------------------- running the shop


MISSING_BOT_SETTING = """no BOT_TOKEN is set, so there is no bot to run.
  - to run your shop: get a token from @BotFather and set BOT_TOKEN (in .env or the environment)
  - to try keyshop without a token: keyshop sandbox"""


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import Storefront, make_bot, run_polling, run_webhook

    tg = settings.telegram
    if tg.bot_token is None:
        sys.stderr.write(MISSING_BOT_SETTING + "\n")
        return 2
    services = await open_shop(settings)
    bot = make_bot(tg.bot_token.get_secret_value(), tg.telegram_api_url)
    front = Storefront.build(services, settings, bot)
    try:
        if settings.webhook.webhook_url:
            await run_webhook(front, settings)
        else:
            await run_polling(front)
    finally:
        await front.stop()
        await close_shop(services)
    return 0


async def cmd_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    from bot.sandbox import run_sandbox

    return await run_sandbox(settings, language=args.language)


# ---------------------------------------------------------------- db


async def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    db = Database(settings.database.url)
    try:
        await migrate.upgrade(db, args.revision)
        _out(f"database at revision {await migrate.current_revision(db)}")
    finally:
        await db.dispose()
    return 0


# ---------------------------------------------------------------- products


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
    )

    async def go(s: Services) -> int:
        pid = await s.catalog.add_product(draft, actor="cli")
        if args.shared_key:
            await s.stock.set_shared_key(pid, args.shared_key, actor="cli")
        _out(str(pid))
        return 0

    return await _with_shop(settings, go)


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
                    "available": levels[p.id].available,
                }
                for p in products
            ]
            _out(json.dumps(rows, ensure_ascii=False, indent=2))
            return 0
        if not products:
            _out("no products yet: keyshop product add --name NAME --price 9.90 --stars 50")
            return 0
        _out(f"{'id':>4}  {'name':<28} {'price':>12} {'stars':>6} {'kind':<7} {'stock':>8}  state")
        for p in products:
            stock = str(levels[p.id].available) if p.delivery_kind is DeliveryKind.UNIQUE else "-"
            _out(
                f"{p.id:>4}  {p.name[:28]:<28} {format_amount(p.price, cur):>12} {p.price_stars:>6} "
                f"{p.delivery_kind.value:<7} {stock:>8}  {'active' if p.active else 'inactive'}"
            )
        return 0

    return await _with_shop(settings, go)


async def cmd_product_set_kind(args: argparse.Namespace, settings: Settings) -> int:
    async def go(s: Services) -> int:
        await s.catalog.update_product(args.product, actor="cli", delivery_kind=DeliveryKind(args.kind))
        return 0

    return await _with_shop(settings, go)


# ---------------------------------------------------------------- categories


async def cmd_category_add(args: argparse.Namespace, settings: Settings) -> int:
    async def go(s: Services) -> int:
        _out(str(await s.catalog.add_category(args.name, args.description, args.position)))
        return 0

    return await _with_shop(settings, go)


async def cmd_category_list(args: argparse.Namespace, settings: Settings) -> int:
    async def go(s: Services) -> int:
        cats = await s.catalog.categories(active_only=False)
        if args.json:
            rows = [{"id": c.id, "name": c.name, "position": c.position, "active": c.active} for c in cats]
            _out(json.dumps(rows, ensure_ascii=False, indent=2))
        for c in [] if args.json else cats:
            _out(f"{c.id:>4}  {c.name}")
        return 0

    return await _with_shop(settings, go)


# ---------------------------------------------------------------- keys and stock


REJECT_REASONS = {
    "blank": "empty",
    "too_long": "longer than 1000 characters",
    "undecodable": "not UTF-8 text",
    "malformed": "not a CSV record with the key column",
    "control": "holds a control character",
    "bidi": "holds a bidirectional formatting character, which reorders how a key is shown",
}


async def cmd_keys_import(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise ShopError(f"no such file: {path}")
    fmt = args.format or ("csv" if path.suffix.lower() == ".csv" else "txt")
    column: str | int | None = args.column
    if isinstance(column, str) and column.isdigit():
        column = int(column)

    async def go(s: Services) -> int:
        size = path.stat().st_size
        with path.open("rb") as f:
            bar = tqdm(
                total=size,
                unit="B",
                unit_scale=True,
                desc="importing",
                disable=not sys.stderr.isatty(),
                file=sys.stderr,
            )

            def progress(rep: ImportReport) -> None:
                bar.update(f.tell() - bar.n)
                bar.set_postfix(added=rep.lines - rep.invalid, invalid=rep.invalid, refresh=False)

            try:
                rep = await s.stock.import_keys(
                    args.product, f, fmt=fmt, column=column, actor="cli", progress=progress
                )
            finally:
                bar.close()
        _out(f"import #{rep.import_id} into product {rep.product_id}: {rep.lines} lines read")
        _out(f"  added      {rep.added}")
        _out(f"  duplicate  {rep.duplicates}")
        _out(f"  invalid    {rep.invalid}")
        for bad in rep.invalid_samples[:20]:
            _out(f"    line {bad.line}: {bad.reason} ({REJECT_REASONS.get(bad.reason, 'invalid')})")
        if rep.invalid > 20:
            _out(f"    ... and {rep.invalid - 20} more")
        return 0

    return await _with_shop(settings, go)


async def cmd_stock(args: argparse.Namespace, settings: Settings) -> int:
    async def go(s: Services) -> int:
        levels = await s.stock.levels(args.product)
        if args.json:
            _out(
                json.dumps(
                    [
                        {
                            "product_id": lv.product_id,
                            "name": lv.product_name,
                            "delivery_kind": lv.delivery_kind.value,
                            "available": lv.available,
                            "reserved": lv.reserved,
                            "sold": lv.sold,
                            "void": lv.void,
                            "low": lv.is_low,
                        }
                        for lv in levels
                    ],
                    ensure_ascii=False,
                    indent=2,
                )
            )
            return 0
        _out(f"{'id':>4}  {'name':<28} {'available':>10} {'reserved':>9} {'sold':>8} {'void':>6}")
        for lv in levels:
            if lv.delivery_kind is not DeliveryKind.UNIQUE:
                _out(f"{lv.product_id:>4}  {lv.product_name[:28]:<28} {lv.delivery_kind.value + ' key':>10}")
                continue
            low = "  LOW" if lv.is_low else ""
            _out(
                f"{lv.product_id:>4}  {lv.product_name[:28]:<28} {lv.available:>10} {lv.reserved:>9} "
                f"{lv.sold:>8} {lv.void:>6}{low}"
            )
        return 0

    return await _with_shop(settings, go)


# ---------------------------------------------------------------- vault


async def cmd_vault_rotate(args: argparse.Namespace, settings: Settings) -> int:
    async def go(s: Services) -> int:
        bar = tqdm(unit="key", desc="re-encrypting", disable=not sys.stderr.isatty(), file=sys.stderr)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            n = await s.stock.rotate_vault(progress=progress)
        finally:
            bar.close()
        _out(f"{n} keys re-encrypted under vault key {s.ctx.vault.current_kid!r}")
        return 0

    return await _with_shop(settings, go)


async def cmd_vault_new_key(args: argparse.Namespace, settings: Settings) -> int:
    from core.vault import new_key_spec

    _out(new_key_spec(args.kid))
    return 0


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="keyshop",
        description="keyshop: sell card keys inside chat apps. Without a command: run the shop "
        "(keyshop run) when BOT_TOKEN is set, else the sandbox.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run the Telegram shop (long polling, or a webhook with WEBHOOK_URL)")
    run.set_defaults(handler=cmd_run)
    sandbox = sub.add_parser("sandbox", help="try the shop in this terminal: no token, a local Bot API")
    sandbox.add_argument("--language", default="en", help="your Telegram language_code, e.g. en or zh-hans")
    sandbox.set_defaults(handler=cmd_sandbox)

    db = sub.add_parser("db", help="database").add_subparsers(dest="db_command", metavar="ACTION")
    up = db.add_parser("upgrade", help="apply migrations (the shop also does this when it starts)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(handler=cmd_db_upgrade)

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

    keys = sub.add_parser("keys", help="card keys").add_subparsers(dest="keys_command", metavar="ACTION")
    imp = keys.add_parser("import", help="import keys from a text file (one per line) or CSV")
    imp.add_argument("product", type=int, help="product id")
    imp.add_argument("file")
    imp.add_argument("--format", choices=["txt", "csv"], help="default: by file extension")
    imp.add_argument("--column", help="CSV column (header name or 0-based index)")
    imp.set_defaults(handler=cmd_keys_import)

    st = sub.add_parser("stock", help="stock levels")
    st.add_argument("product", type=int, nargs="?")
    st.add_argument("--json", action="store_true")
    st.set_defaults(handler=cmd_stock)

    vault = sub.add_parser("vault", help="encryption keys").add_subparsers(
        dest="vault_command", metavar="ACTION"
    )
    rot = vault.add_parser("rotate", help="re-encrypt all keys under the newest vault key (resumable)")
    rot.set_defaults(handler=cmd_vault_rotate)
    nk = vault.add_parser("new-key", help="print a new KID:BASE64 entry to append to VAULT_KEYS")
    nk.add_argument("--kid")
    nk.set_defaults(handler=cmd_vault_new_key)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None and args.command is not None:  # e.g. `keyshop keys` without an action
        parser.print_help()
        return 2
    try:
        settings = load_settings()
        logging.basicConfig(
            level="DEBUG" if args.verbose else settings.log.log_level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        if not args.verbose:
            logging.getLogger("alembic").setLevel(logging.WARNING)
        if handler is None:  # bare `keyshop`: the shop if there is a token, else the sandbox to try it
            if settings.telegram.bot_token is None:
                sys.stderr.write("no BOT_TOKEN set: starting the sandbox (a local Telegram stand-in)\n")
                args.language = "en"
            handler = cmd_run if settings.telegram.bot_token is not None else cmd_sandbox
        return asyncio.run(handler(args, settings))
    except (SettingsError, ShopError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception as e:  # one clear line, never a traceback; details only with --verbose
        log.debug("unexpected error", exc_info=True)
        sys.stderr.write(f"error: {type(e).__name__}: {e}\n")
        return 1
