"""``keyshop run`` and ``keyshop sandbox``: the shop on Telegram, or against a local Bot API."""

from __future__ import annotations

import argparse
import sys

from bot.cli.common import Subparsers
from bot.runtime import close_shop, open_shop
from bot.settings import Settings

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


def register(sub: Subparsers) -> None:
    run = sub.add_parser("run", help="run the Telegram shop (long polling, or a webhook with WEBHOOK_URL)")
    run.set_defaults(handler=cmd_run)
    sandbox = sub.add_parser("sandbox", help="try the shop in this terminal: no token, a local Bot API")
    sandbox.add_argument("--language", default="en", help="your Telegram language_code, e.g. en or zh-hans")
    sandbox.set_defaults(handler=cmd_sandbox)
