"""WeChat Pay API v3's error answers: an HTTP status and ``{"code": …, "message": …}``, unsigned (WeChat Pay
puts no ``Wechatpay-*`` headers on its 4xx answers). Codes and statuses from the API pages' error tables;
where the docs give none for a case the emulator's choice is marked."""

from __future__ import annotations

from typing import Any

PARAM_ERROR = "PARAM_ERROR"  # 400
INVALID_REQUEST = "INVALID_REQUEST"  # 400: against the v3 rules, or the order's data
APPID_MCHID_NOT_MATCH = "APPID_MCHID_NOT_MATCH"  # 400
ORDER_CLOSED = "ORDER_CLOSED"  # 400
ORDER_PAID = "ORDERPAID"  # 400 — the emulator's choice for closing/placing a paid order (v2's code)
SIGN_ERROR = "SIGN_ERROR"  # 401
OUT_TRADE_NO_USED = "OUT_TRADE_NO_USED"  # 403: same out_trade_no, other parameters or product
ORDER_NOT_EXIST = "ORDER_NOT_EXIST"  # 404: query
RESOURCE_NOT_EXISTS = "RESOURCE_NOT_EXISTS"  # 404: refund of an unpaid order, unknown refund
SYSTEM_ERROR = "SYSTEM_ERROR"  # 500


class PayError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


def param(message: str) -> PayError:
    return PayError(400, PARAM_ERROR, message)


def invalid(message: str) -> PayError:
    return PayError(400, INVALID_REQUEST, message)


def sign_error(message: str = "签名错误") -> PayError:
    return PayError(401, SIGN_ERROR, message)
