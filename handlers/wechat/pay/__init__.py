"""WeChat Pay API v3 for the WeChat channel: the client (``WechatPay``), its configuration (``PayConfig``),
what it returns and raises. Framework-free apart from aiohttp (HTTP) and ``cryptography`` (RSA, AES-GCM);
the composition root builds it from settings, the pay page and the notify endpoint use it."""

from handlers.wechat.pay.client import WechatPay, rfc3339
from handlers.wechat.pay.config import PayConfig
from handlers.wechat.pay.errors import (
    NotifyRejected,
    OrderNotFound,
    OrderPaid,
    OutTradeNoUsed,
    WechatPayError,
    WechatPayUnavailable,
    WechatPayUnverified,
)
from handlers.wechat.pay.models import Notification, RefundResult, Transaction

__all__ = [
    "Notification",
    "NotifyRejected",
    "OrderNotFound",
    "OrderPaid",
    "OutTradeNoUsed",
    "PayConfig",
    "RefundResult",
    "Transaction",
    "WechatPay",
    "WechatPayError",
    "WechatPayUnavailable",
    "WechatPayUnverified",
    "rfc3339",
]
