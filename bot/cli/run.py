"""``keyshop run`` and ``keyshop sandbox``: the shop on Telegram, or against a local Bot API.

``keyshop run`` never exits because something it depends on is briefly away: opening (and migrating) the
database, loading the vault, and every call to Telegram at start-up are retried with capped exponential
backoff (OPS_RETRY_FIRST_SECONDS, OPS_RETRY_MAX_SECONDS), each outage logged once when it starts and once
when it ends. A wrong setting is no outage: a token Telegram refuses (401) or a refused database password
ends it with one line. SIGTERM and SIGINT stop it cleanly whatever it is doing (exit code 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Coroutine
from typing import Any

from bot.cli.common import Subparsers
from bot.runtime import close_shop, open_shop_when_up
from bot.settings import Settings, SettingsError

log = logging.getLogger("keyshop")

MISSING_BOT_SETTING = """no BOT_TOKEN is set, so there is no bot to run.
  - to run your shop: get a token from @BotFather and set BOT_TOKEN (in .env or the environment)
  - to run it in a WeChat official account only: set WECHAT_APP_ID and WECHAT_TOKEN (README: WeChat)
  - to try keyshop without a token: keyshop sandbox"""


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    if settings.telegram.bot_token is None:
        if settings.wechat.configured:  # the official account alone
            await until_signalled(_run_wechat(settings))
            return 0
        sys.stderr.write(MISSING_BOT_SETTING + "\n")
        return 2
    await until_signalled(_run(settings))
    return 0


async def _run_wechat(settings: Settings) -> None:
    from bot.wechat import run_wechat_only

    services = await open_shop_when_up(settings)
    try:
        await run_wechat_only(services, settings)
    finally:
        await close_shop(services)


async def _run(settings: Settings) -> None:
    from aiogram.exceptions import TelegramNotFound, TelegramUnauthorizedError

    from bot.app import Storefront, make_bot, run_polling, run_webhook
    from bot.wechat import WechatChannel
    from handlers.telegram.health import Health

    tg = settings.telegram
    assert tg.bot_token is not None
    health = Health()
    services = await open_shop_when_up(settings, health.database)
    try:
        bot = make_bot(tg.bot_token.get_secret_value(), tg.telegram_api_url)
        wechat = WechatChannel.from_settings(services, settings)
        front = Storefront.build(services, settings, bot, health=health, wechat=wechat)
        try:
            if settings.webhook.webhook_url:
                await run_webhook(front, settings)
            else:
                await run_polling(front, settings)
        finally:
            await front.stop()
    except TelegramUnauthorizedError:
        raise SettingsError(
            "setting BOT_TOKEN: Telegram refused the token (401 Unauthorized); "
            "copy it again from @BotFather (it changes when revoked)"
        ) from None
    except TelegramNotFound:
        raise SettingsError(
            f"setting TELEGRAM_API_URL: {tg.telegram_api_url} answered 404 Not Found: not a Bot API server, "
            "or the token is malformed"
        ) from None
    finally:
        await close_shop(services)


async def until_signalled(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` (a coroutine) until it ends or SIGTERM/SIGINT arrives; on a signal it is cancelled,
    so that its ``finally`` clauses stop the shop in order, and this returns normally."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    signalled = asyncio.Event()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on this platform or thread
            loop.add_signal_handler(sig, signalled.set)
            installed.append(sig)
    waiter = asyncio.create_task(signalled.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        waiter.cancel()
        if not task.done():
            log.info("stopping")
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if not task.cancelled():
        task.result()  # its error, if it failed


async def cmd_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    if args.channel == "wechat":
        from bot.wechat_terminal import run_wechat_sandbox

        return await run_wechat_sandbox(settings)
    from bot.sandbox import run_sandbox

    return await run_sandbox(settings, language=args.language)


def register(sub: Subparsers) -> None:
    run = sub.add_parser("run", help="run the Telegram shop (long polling, or a webhook with WEBHOOK_URL)")
    run.set_defaults(handler=cmd_run)
    sandbox = sub.add_parser("sandbox", help="try the shop in this terminal: no token, a local Bot API")
    sandbox.add_argument("--language", default="en", help="your Telegram language_code, e.g. en or zh-hans")
    sandbox.add_argument(
        "--channel",
        choices=("telegram", "wechat"),
        default="telegram",
        help="chat as a Telegram user (default) or as a WeChat buyer of an official account with WeChat Pay",
    )
    sandbox.set_defaults(handler=cmd_sandbox)
