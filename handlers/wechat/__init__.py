"""The WeChat official-account channel: the callback WeChat pushes to, the buyer's dialogue, and the client
of WeChat's API (with the access_token every instance shares). Mounted on an aiohttp application by the
composition root (``add_wechat_routes``) when WECHAT_* settings are set."""

from handlers.wechat.api import WechatApi
from handlers.wechat.callback import WechatCallback, WechatConfig, add_wechat_routes, build_wechat_app
from handlers.wechat.tokens import TokenStore

__all__ = [
    "TokenStore",
    "WechatApi",
    "WechatCallback",
    "WechatConfig",
    "add_wechat_routes",
    "build_wechat_app",
]
