"""The WeChat official-account channel: the callback WeChat pushes to and the buyer's dialogue. Mounted
on an aiohttp application by the composition root (``add_wechat_routes``) when WECHAT_* settings are set."""

from handlers.wechat.callback import WechatCallback, WechatConfig, add_wechat_routes, build_wechat_app

__all__ = ["WechatCallback", "WechatConfig", "add_wechat_routes", "build_wechat_app"]
