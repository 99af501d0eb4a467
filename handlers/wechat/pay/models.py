"""WeChat Pay's objects as the shop reads them: an order (``Transaction``), a refund (``RefundResult``) and a
notification (``Notification``), parsed strictly from WeChat Pay's JSON (field names of API v3: the query
answer and the TRANSACTION.SUCCESS resource share one shape; a refund is ``status`` in API answers and
``refund_status`` in notifications). Amounts are integers in fen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

TRADE_STATES = frozenset({"SUCCESS", "REFUND", "NOTPAY", "CLOSED", "REVOKED", "USERPAYING", "PAYERROR"})
REFUND_STATES = frozenset({"SUCCESS", "CLOSED", "PROCESSING", "ABNORMAL"})


class Malformed(ValueError):
    """WeChat Pay's JSON lacks a field or has one of the wrong type."""


@dataclass(frozen=True)
class Transaction:
    """An order at WeChat Pay. ``transaction_id``, ``openid``, ``payer_total`` and ``success_time`` are None
    until it is paid."""

    out_trade_no: str
    transaction_id: str | None
    trade_state: str  # SUCCESS, NOTPAY, CLOSED, REFUND, USERPAYING, PAYERROR, REVOKED
    total: int
    payer_total: int | None
    currency: str
    openid: str | None
    appid: str
    mchid: str
    success_time: datetime | None
    attach: str | None = None

    @property
    def paid(self) -> bool:
        """Money was taken: paid, or paid and (partly) refunded since."""
        return self.trade_state in ("SUCCESS", "REFUND")


@dataclass(frozen=True)
class RefundResult:
    out_refund_no: str
    refund_id: str
    out_trade_no: str
    transaction_id: str
    status: str  # SUCCESS, PROCESSING, ABNORMAL, CLOSED
    refund: int
    total: int
    success_time: datetime | None = None


@dataclass(frozen=True)
class Notification:
    """A verified, decrypted notification. ``transaction`` for TRANSACTION.*, ``refund`` for REFUND.*;
    both None for an event the shop does not know (acknowledge it and move on)."""

    id: str
    event_type: str
    transaction: Transaction | None
    refund: RefundResult | None


def transaction_from(data: Mapping[str, Any]) -> Transaction:
    amount = _obj(data, "amount")
    payer = data.get("payer")
    openid = _opt_str(payer, "openid") if isinstance(payer, Mapping) else None
    state = _str(data, "trade_state")
    if state not in TRADE_STATES:
        raise Malformed(f"unknown trade_state {state[:32]!r}")
    # An unpaid order's amount may carry only payer_currency (WeChat Pay's NOTPAY answers do)
    currency = _opt_str(amount, "currency") or _opt_str(amount, "payer_currency") or "CNY"
    return Transaction(
        out_trade_no=_str(data, "out_trade_no"),
        transaction_id=_opt_str(data, "transaction_id"),
        trade_state=state,
        total=_int(amount, "total"),
        payer_total=_opt_int(amount, "payer_total"),
        currency=currency,
        openid=openid,
        appid=_str(data, "appid"),
        mchid=_str(data, "mchid"),
        success_time=_opt_time(data, "success_time"),
        attach=_opt_str(data, "attach"),
    )


def refund_from(data: Mapping[str, Any], *, notified: bool = False) -> RefundResult:
    """A refund from an API answer, or (``notified``) from a REFUND.* resource."""
    status = _str(data, "refund_status" if notified else "status")
    if status not in REFUND_STATES:
        raise Malformed(f"unknown refund status {status[:32]!r}")
    amount = _obj(data, "amount")
    return RefundResult(
        out_refund_no=_str(data, "out_refund_no"),
        refund_id=_str(data, "refund_id"),
        out_trade_no=_str(data, "out_trade_no"),
        transaction_id=_str(data, "transaction_id"),
        status=status,
        refund=_int(amount, "refund"),
        total=_int(amount, "total"),
        success_time=_opt_time(data, "success_time"),
    )


def _obj(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise Malformed(f"{key} missing")
    return value


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise Malformed(f"{key} missing")
    return value


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Malformed(f"{key} is not a string")
    return value


def _int(data: Mapping[str, Any], key: str) -> int:
    value = _opt_int(data, key)
    if value is None:
        raise Malformed(f"{key} missing")
    return value


def _opt_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Malformed(f"{key} is not a whole number of fen")
    return value


def _opt_time(data: Mapping[str, Any], key: str) -> datetime | None:
    text = _opt_str(data, key)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Malformed(f"{key} is not RFC 3339") from None
    if moment.tzinfo is None:
        raise Malformed(f"{key} has no offset")
    return moment
