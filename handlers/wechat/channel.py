"""The WeChat channel's HTTP side assembled on one aiohttp application: the callback WeChat pushes to,
and, with WeChat Pay, the buyer's pages and WeChat Pay's notifies, all under the callback path:

- ``GET/POST <path>``: pushes (``callback``);
- ``GET <path>/pay/<ref>``, ``GET <path>/order/<ref>``: the pay and order pages (``web.routes``);
- ``POST <path>/pay/notify``, ``POST <path>/pay/refund-notify``: WeChat Pay's notifies (``web.notify``).

The composition root (``bot.wechat``) fills ``WechatConfig`` and ``PayWiring`` from settings; tests fill
them directly."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from core.services import Services
from handlers.wechat.api import WechatApi
from handlers.wechat.callback import WechatCallback, WechatConfig
from handlers.wechat.dialogue import Choices, Dialogue, PayPages
from handlers.wechat.paid import Merchant
from handlers.wechat.pay import WechatPay
from handlers.wechat.texts import Texts
from handlers.wechat.web.notify import PayNotifies, add_notify_routes
from handlers.wechat.web.routes import PagesConfig, WechatPages, add_page_routes
from handlers.wechat.web.session import Sessions


@dataclass(frozen=True)
class PayWiring:
    """WeChat Pay as the channel uses it: the client, whose payments are ours, where the pages are, and
    the secret their session cookies are signed with (the AppSecret)."""

    pay: WechatPay
    merchant: Merchant
    pages: PagesConfig
    session_secret: str


def add_channel_routes(
    app: web.Application,
    services: Services,
    config: WechatConfig,
    api: WechatApi | None = None,
    paying: PayWiring | None = None,
) -> WechatCallback:
    """Serve the channel on ``app``: pushes always; pages and notifies with ``paying`` (which needs
    ``api`` for OAuth)."""
    texts = Texts(config.locale_dir)
    links = PayPages(paying.pages.public_url, config.callback_path) if paying is not None else None
    dialogue = Dialogue(services, texts, Choices(), api, links)
    callback = WechatCallback(services, config, dialogue, api)
    app.router.add_get(config.callback_path, callback.verify)
    app.router.add_post(config.callback_path, callback.push)
    app.on_shutdown.append(callback.settle)  # answers in flight reach the chat or the outbox first
    if paying is not None:
        if api is None:
            raise ValueError("WeChat Pay's pages need the official account's API (OAuth)")
        sessions = Sessions(paying.session_secret)
        pages = WechatPages(services, texts, paying.pages, sessions, api, paying.pay, paying.merchant)
        add_page_routes(app, pages)
        add_notify_routes(app, PayNotifies(services, paying.pay, paying.merchant), config.callback_path)
    return callback
