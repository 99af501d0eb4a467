"""The ``keyshop`` command line (also ``python -m bot``). Errors are one line and a non-zero exit.

One module per command group, each adding its commands to the parser with ``register``: ``run`` (run,
sandbox), ``db``, ``catalog`` (product, category), ``stock`` (keys, stock), ``vault``, ``audit``,
``distributors``, ``ledger``, ``jobs`` (scheduler, jobs list, jobs run), ``wechat`` (wechat menu). A command
is an ``async def cmd_…(args, settings) -> int`` (the exit code) set as its parser's ``handler``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bot.cli import audit, catalog, db, distributors, jobs, ledger, run, stock, vault, wechat
from bot.cli.common import Handler
from bot.logs import configure_logging
from bot.settings import SettingsError, load_settings
from core.errors import ShopError

log = logging.getLogger("keyshop")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="keyshop",
        description="keyshop: sell card keys inside chat apps. Without a command: run the shop "
        "(keyshop run) when BOT_TOKEN is set, else the sandbox.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for group in (
        run,
        jobs,
        db,
        catalog,
        stock,
        vault,
        audit,
        distributors,
        ledger,
        wechat,
    ):  # in this order in --help
        group.register(sub)
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
        configure_logging(settings.log, verbose=args.verbose)
        if handler is None:  # bare `keyshop`: the shop if there is a token (or an official account), else
            # the sandbox to try it
            runs_shop = settings.telegram.bot_token is not None or settings.wechat.configured
            if not runs_shop:
                sys.stderr.write("no BOT_TOKEN set: starting the sandbox (a local Telegram stand-in)\n")
                args.language, args.channel = "en", "telegram"
            handler = run.cmd_run if runs_shop else run.cmd_sandbox
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
