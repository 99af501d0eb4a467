"""What can go wrong talking to WeChat Pay, as exceptions a caller acts on.

- ``WechatPayError``: WeChat Pay answered with a non-2xx status and its ``{"code", "message"}`` body. Branch
  on ``code`` (and ``status``), never on ``message``: WeChat words one code several ways. WeChat Pay does
  not sign its 4xx answers (its error answers carry no ``Wechatpay-*`` headers), so an error is taken as
  it comes; nothing the shop does on one may hand out goods — a query (whose answer is verified) decides.
- ``WechatPayUnavailable``: no usable answer (timeout, connection refused, a 2xx we cannot verify). The
  outcome of the call is unknown: retry with the same parameters (the same ``out_trade_no`` or
  ``out_refund_no``), or query first.
- ``NotifyRejected``: a notification that is not provably WeChat Pay's, fresh, and for us; answer 4xx
  (WeChat Pay retries a genuine one)."""

from __future__ import annotations

ORDER_PAID = "ORDERPAID"
ORDER_NOT_EXIST = "ORDER_NOT_EXIST"  # querying an unknown out_trade_no
RESOURCE_NOT_EXISTS = "RESOURCE_NOT_EXISTS"  # refunding an unpaid order, querying an unknown refund
OUT_TRADE_NO_USED = "OUT_TRADE_NO_USED"
INVALID_REQUEST = "INVALID_REQUEST"
SYSTEM_ERROR = "SYSTEM_ERROR"
FREQUENCY_LIMITED = "FREQUENCY_LIMITED"


class WechatPayError(Exception):
    """WeChat Pay refused the call: ``status`` (HTTP), ``code`` (e.g. ``PARAM_ERROR``) and ``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"WeChat Pay {status} {code}: {message}")
        self.status, self.code, self.message = status, code, message

    @property
    def retryable(self) -> bool:
        """A system error or rate limit: the same call, with the same parameters, may succeed later."""
        return self.status >= 500 or self.status == 429 or self.code in (SYSTEM_ERROR, FREQUENCY_LIMITED)


class OrderPaid(WechatPayError):
    """The order is already paid (closing it, or placing it again): query it and deliver."""


class OrderNotFound(WechatPayError):
    """No such order or refund at WeChat Pay (404): never placed, or placed under another merchant."""


class OutTradeNoUsed(WechatPayError):
    """The ``out_trade_no`` was placed before with other parameters (amount, description, time_expire, …)
    or through another product (Native vs JSAPI). The docs give 403 ``OUT_TRADE_NO_USED``; merchants also
    report 400 ``INVALID_REQUEST`` "201 商户订单号重复", so both land here."""


class WechatPayUnavailable(Exception):
    """No usable answer from WeChat Pay: whether the call took effect is unknown. Retry it unchanged."""


class WechatPayUnverified(WechatPayUnavailable):
    """A 2xx answer whose ``Wechatpay-*`` signature is missing, stale, from an unknown key or wrong (or a
    signed one the shop cannot read): not trusted, so the outcome is unknown, as if no answer had come."""


class NotifyRejected(Exception):
    """A notification refused before anything was believed; ``reason`` says why (for the log, in English,
    never containing keys)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def api_error(status: int, code: str, message: str) -> WechatPayError:
    """The exception for a non-2xx answer."""
    if code == ORDER_PAID:
        return OrderPaid(status, code, message)
    if code == OUT_TRADE_NO_USED or (code == INVALID_REQUEST and "订单号重复" in message):
        return OutTradeNoUsed(status, code, message)
    if status == 404 or code in (ORDER_NOT_EXIST, RESOURCE_NOT_EXISTS):
        return OrderNotFound(status, code, message)
    return WechatPayError(status, code, message)
