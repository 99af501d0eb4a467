"""What the WeChat API's answers mean to the shop: ``{"errcode": N, "errmsg": "..."}`` turned into
exceptions a caller can act on (the codes: WeChat's global return codes, ``../shared/WECHAT.md``).

The customer-service window errors are not failures of the shop: a message refused with ``WindowClosed``
or ``QuotaUsed`` waits (parked) until the buyer writes again, when WeChat opens a new window."""

from __future__ import annotations

INVALID_CREDENTIAL = 40001  # the access_token is unknown or was invalidated
INVALID_TEMPLATE_ID = 40037  # the account has no template of that id
ACCESS_TOKEN_EXPIRED = 42001
CONTENT_TOO_LONG = 45002
DAILY_QUOTA = 45009
OUT_OF_WINDOW = 45015
QUOTA_USED = 45047
REQUIRE_SUBSCRIBE = 43004  # a template message to someone who does not follow the account
ARGUMENT_INVALID = 47003  # a template field WeChat refuses (over 20 characters, a line break, empty)


class WechatApiError(Exception):
    """The API refused a call (any errcode other than 0), or answered something that is not its JSON."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat API error {errcode}: {errmsg}")
        self.errcode, self.errmsg = errcode, errmsg


class TokenRejected(WechatApiError):
    """40001/42001: the access_token is invalid or expired; fetch it again (normal mode) and retry once."""


class WindowClosed(WechatApiError):
    """45015: the buyer's 48-hour customer-service window is closed (or they unfollowed)."""


class QuotaUsed(WechatApiError):
    """45047: the messages the current window allows are used up."""


class TextTooLong(WechatApiError):
    """45002: the text is over WeChat's limit (about 2048 bytes)."""


class DailyQuota(WechatApiError):
    """45009: the account's daily quota for this endpoint is used up (resets at midnight, Beijing time)."""


_BY_CODE: dict[int, type[WechatApiError]] = {
    INVALID_CREDENTIAL: TokenRejected,
    ACCESS_TOKEN_EXPIRED: TokenRejected,
    CONTENT_TOO_LONG: TextTooLong,
    DAILY_QUOTA: DailyQuota,
    OUT_OF_WINDOW: WindowClosed,
    QUOTA_USED: QuotaUsed,
}


def api_error(errcode: int, errmsg: str) -> WechatApiError:
    """The exception for an API answer with ``errcode`` (a plain ``WechatApiError`` for codes the shop has no
    particular answer to)."""
    return _BY_CODE.get(errcode, WechatApiError)(errcode, errmsg)
