"""``keyshop wechat menu``: the official account's custom menu.

    keyshop wechat menu [--dry-run]   create the menu 商品 / 我的订单 / 推广 (CLICK keys catalog, orders,
                                      invite: what the dialogue answers); --dry-run prints its JSON only

It calls WeChat's API with WECHAT_APP_ID and WECHAT_APP_SECRET (at WECHAT_API_URL), with the access_token
the running shop shares through the database, so it never knocks out the shop's token."""

from __future__ import annotations

import argparse
import json
import sys

from bot.cli.common import Subparsers, out, with_shop
from bot.settings import Settings
from bot.wechat import WechatNotConfigured, wechat_api
from core.services import Services
from handlers.wechat.dialogue import MENU_BUTTONS, custom_menu
from handlers.wechat.errors import WechatApiError


def _fail(message: str) -> int:
    sys.stderr.write(f"error: {message}\n")
    return 1


async def cmd_wechat_menu(args: argparse.Namespace, settings: Settings) -> int:
    menu = custom_menu()
    if args.dry_run:
        out(json.dumps(menu, ensure_ascii=False, indent=2))
        return 0
    wx = settings.wechat
    if not wx.app_id or wx.app_secret is None:
        return _fail("set WECHAT_APP_ID and WECHAT_APP_SECRET to create the menu (--dry-run only prints it)")

    async def go(services: Services) -> int:
        try:
            api = wechat_api(services, settings)
        except WechatNotConfigured as e:
            return _fail(str(e))
        try:
            await api.create_menu(menu)
        except WechatApiError as e:
            return _fail(f"WeChat refused the menu: {e}")
        finally:
            await api.close()
        names = " / ".join(name for name, _ in MENU_BUTTONS)
        out(f"menu created: {names} (WeChat may take up to 24 h to show it in every client)")
        return 0

    return await with_shop(settings, go)


def register(sub: Subparsers) -> None:
    wechat = sub.add_parser("wechat", help="the WeChat official account").add_subparsers(
        dest="wechat_command", metavar="ACTION"
    )
    menu = wechat.add_parser("menu", help="create the custom menu 商品 / 我的订单 / 推广")
    menu.add_argument("--dry-run", action="store_true", help="print the menu's JSON, change nothing")
    menu.set_defaults(handler=cmd_wechat_menu)
