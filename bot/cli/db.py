"""``keyshop db upgrade``: apply database migrations."""

from __future__ import annotations

import argparse

from bot.cli.common import Subparsers, out
from bot.settings import Settings
from core import migrate
from core.db import Database


async def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    db = Database(settings.database.url)
    try:
        await migrate.upgrade(db, args.revision)
        out(f"database at revision {await migrate.current_revision(db)}")
    finally:
        await db.dispose()
    return 0


def register(sub: Subparsers) -> None:
    db = sub.add_parser("db", help="database").add_subparsers(dest="db_command", metavar="ACTION")
    up = db.add_parser("upgrade", help="apply migrations (the shop also does this when it starts)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(handler=cmd_db_upgrade)
