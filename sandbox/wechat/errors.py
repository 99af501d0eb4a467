"""WeChat's error shape (``{"errcode": N, "errmsg": "..."}``) and the codes the emulator answers with.

Codes and wording from WeChat's global return codes (全局返回码), see ``../shared/WECHAT.md``; the few the
docs do not pin down for a given rule are marked where they are used.
"""

from __future__ import annotations

from typing import Any

INVALID_CREDENTIAL = 40001  # access_token unknown or invalidated
INVALID_OPENID = 40003
INVALID_MESSAGE_TYPE = 40008
INVALID_APPID = 40013
INVALID_BUTTON_SIZE = 40016
INVALID_BUTTON_TYPE = 40017
INVALID_BUTTON_NAME_SIZE = 40018
INVALID_BUTTON_KEY_SIZE = 40019
INVALID_BUTTON_URL_SIZE = 40020
INVALID_SUB_BUTTON_SIZE = 40023
INVALID_CODE = 40029
INVALID_TEMPLATE_ID = 40037
INVALID_ARGS = 40097
INVALID_APPSECRET = 40125
CODE_BEEN_USED = 40163
ACCESS_TOKEN_MISSING = 41001
ACCESS_TOKEN_EXPIRED = 42001
REQUIRE_SUBSCRIBE = 43004
CONTENT_TOO_LONG = 45002
DAILY_QUOTA = 45009  # also the emulator's answer to a 21st force_refresh in a day (its choice)
OUT_OF_WINDOW = 45015
QUOTA_USED = 45047
ARGUMENT_INVALID = 47003  # "argument invalid! data.<key>.value invalid" / "... is empty", as seen in the wild


class WeChatError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode, self.errmsg = errcode, errmsg

    def body(self) -> dict[str, Any]:
        return {"errcode": self.errcode, "errmsg": self.errmsg}


OK: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}
