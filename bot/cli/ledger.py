"""``keyshop ledger check``: what the ledger and the commission rules keep, verified against what is stored
(``core.ledger_check``: postings sum to zero, balances equal their entries, every order's commissions are
what the rules say).

    keyshop ledger check [--database-url URL ...] [--json]

Each drift is one line on stdout, and the exit code is 1 when there is any; a clean ledger prints
``ledger clean`` and exits 0. The check only reads: it opens the database as it is (no migration, no vault,
as it reads no card key), so it can check a copy or a backup, or several at once (``--database-url``
again: each line then starts with its database). ``--json``: one object per database and line,
``{"database", "clean", "drift": [lines]}``. A progress bar counts the orders on a terminal."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sqlalchemy import make_url
from tqdm import tqdm

from bot.cli.common import Subparsers, out
from bot.settings import Settings
from core.db import Database, normalize_url
from core.errors import ShopError
from core.ledger import Drift
from core.services.ledger import check_database


async def cmd_ledger_check(args: argparse.Namespace, settings: Settings) -> int:
    urls: list[str] = args.database_url or [settings.database.url]
    rates = settings.shop.commission_rates_bp
    dirty = 0
    for url in urls:
        name = _shown(url)
        drift = await _check(url, rates)
        dirty += bool(drift)
        lines = [d.what for d in drift]
        if args.json:
            out(json.dumps({"database": name, "clean": not lines, "drift": lines}, ensure_ascii=False))
            continue
        prefix = f"{name}: " if len(urls) > 1 else ""
        for line in lines or ["ledger clean"]:
            out(prefix + line)
        if lines:
            sys.stderr.write(f"{prefix}{len(lines)} drift{'s' if len(lines) > 1 else ''} found\n")
    return 1 if dirty else 0


async def _check(url: str, rates: tuple[int, ...]) -> list[Drift]:
    u = normalize_url(url)
    if u.get_backend_name() == "sqlite" and not Path(u.database or "").is_file():
        raise ShopError(f"no such database: {u.database}")  # never an empty file made by connecting
    db = Database(u)
    bar = tqdm(total=None, unit=" orders", desc="checking", disable=not sys.stderr.isatty(), file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        return await check_database(db, rates, progress)
    finally:
        bar.close()
        await db.dispose()


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def register(sub: Subparsers) -> None:
    ledger = sub.add_parser("ledger", help="the commission ledger").add_subparsers(
        dest="ledger_command", metavar="ACTION"
    )
    check = ledger.add_parser(
        "check", help="verify the ledger and every order's commissions; exit 1 on any drift"
    )
    check.add_argument(
        "--database-url",
        action="append",
        metavar="URL",
        help="the database to check (again for several); default: the shop's (DATABASE_URL)",
    )
    check.add_argument("--json", action="store_true", help="one JSON object per database")
    check.set_defaults(handler=cmd_ledger_check)
