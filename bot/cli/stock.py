"""``keyshop keys import`` and ``keyshop stock``: card keys in, stock levels out."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

from bot.cli.common import Subparsers, out, with_shop
from bot.settings import Settings
from core.errors import ShopError
from core.models import DeliveryKind, ImportReport
from core.roles import Grant, Role
from core.services import Services

CLI_GRANT = Grant(Role.OWNER)  # whoever runs the CLI holds the shop's database and vault keys

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
        out(f"import #{rep.import_id} into product {rep.product_id}: {rep.lines} lines read")
        out(f"  added      {rep.added}")
        out(f"  duplicate  {rep.duplicates}")
        out(f"  invalid    {rep.invalid}")
        for bad in rep.invalid_samples[:20]:
            out(f"    line {bad.line}: {bad.reason} ({REJECT_REASONS.get(bad.reason, 'invalid')})")
        if rep.invalid > 20:
            out(f"    ... and {rep.invalid - 20} more")
        return 0

    return await with_shop(settings, go)


async def cmd_stock(args: argparse.Namespace, settings: Settings) -> int:
    async def go(s: Services) -> int:
        levels = await s.stock.levels(args.product)
        if args.json:
            out(
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
        out(f"{'id':>4}  {'name':<28} {'available':>10} {'reserved':>9} {'sold':>8} {'void':>6}")
        for lv in levels:
            if lv.delivery_kind is not DeliveryKind.UNIQUE:
                out(f"{lv.product_id:>4}  {lv.product_name[:28]:<28} {lv.delivery_kind.value + ' key':>10}")
                continue
            low = "  LOW" if lv.is_low else ""
            out(
                f"{lv.product_id:>4}  {lv.product_name[:28]:<28} {lv.available:>10} {lv.reserved:>9} "
                f"{lv.sold:>8} {lv.void:>6}{low}"
            )
        return 0

    return await with_shop(settings, go)


async def cmd_keys_export(args: argparse.Namespace, settings: Settings) -> int:
    """A product's unsold keys into a new file (mode 600), any size: what ``/export`` refuses over 50 MB.
    Audited as the chat's export (``keys_exported``, actor ``cli``); without ``--yes`` it only counts."""
    path = Path(args.file)

    async def go(s: Services) -> int:
        product, count = await s.keys.unsold(args.product, grant=CLI_GRANT)
        if not args.yes:
            out(f"product {product.id} ({product.name}) has {count} unsold keys")
            out("nothing exported: add --yes to write them to the file (the export is audited)")
            return 2
        try:  # the file first, so a reveal is never audited for a file that cannot be written
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise ShopError(f"{path} exists: choose a new file (an export never overwrites one)") from None
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            try:
                keys = await s.keys.export(
                    args.product, grant=CLI_GRANT, actor="cli", request=time.time_ns() // 1000
                )
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            for key in keys:
                f.write(key + "\n")
        out(f"exported {len(keys)} keys of product {product.id} to {path} (audited as keys_exported)")
        return 0

    return await with_shop(settings, go)


def register(sub: Subparsers) -> None:
    keys = sub.add_parser("keys", help="card keys").add_subparsers(dest="keys_command", metavar="ACTION")
    imp = keys.add_parser("import", help="import keys from a text file (one per line) or CSV")
    imp.add_argument("product", type=int, help="product id")
    imp.add_argument("file")
    imp.add_argument("--format", choices=["txt", "csv"], help="default: by file extension")
    imp.add_argument("--column", help="CSV column (header name or 0-based index)")
    imp.set_defaults(handler=cmd_keys_import)
    exp = keys.add_parser(
        "export",
        help="write a product's unsold keys to a new file, one a line (any size; audited)",
    )
    exp.add_argument("product", type=int, help="product id")
    exp.add_argument("file", help="a new file (never overwritten; created readable by you only)")
    exp.add_argument("--yes", action="store_true", help="confirm: without it, only the count is shown")
    exp.set_defaults(handler=cmd_keys_export)

    st = sub.add_parser("stock", help="stock levels")
    st.add_argument("product", type=int, nargs="?")
    st.add_argument("--json", action="store_true")
    st.set_defaults(handler=cmd_stock)
