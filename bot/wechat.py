"""The official account's API client as the composition root builds it from WECHAT_* settings: one per
process, its access_token shared with every other instance through the shop's database."""

from __future__ import annotations

from bot.settings import Settings
from core.services import Services
from handlers.wechat.api import WechatApi
from handlers.wechat.tokens import TokenStore


class WechatNotConfigured(Exception):
    """WECHAT_APP_ID or WECHAT_APP_SECRET is missing: the API cannot be called."""


def wechat_api(services: Services, settings: Settings) -> WechatApi:
    """The API client for WECHAT_APP_ID with WECHAT_APP_SECRET at WECHAT_API_URL (close it when done)."""
    wx = settings.wechat
    if not wx.app_id or wx.app_secret is None:
        raise WechatNotConfigured("WECHAT_APP_ID and WECHAT_APP_SECRET must be set to call WeChat's API")
    tokens = TokenStore(services.wechat_tokens, wx.app_id)
    return WechatApi(wx.app_id, wx.app_secret.get_secret_value(), wx.api_url, tokens)
