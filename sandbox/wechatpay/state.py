"""The platform's state: the merchant it serves (id, AppID, APIv3 key, API certificate's public key and
serial), its own signing key, the orders and refunds, and the clock. Shared by the API (``api.py``), the
notifier (``notifies.py``) and the buyer's side (``buyer.py``)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from sandbox.wechatpay import crypto

BEIJING = timezone(timedelta(hours=8))
PREPAY_TTL = 7200.0  # a prepay_id (and a code_url) works for 2 hours
DEFAULT_EXPIRY = 7 * 86400.0  # an order placed without time_expire can be paid for 7 days
MIN_EXPIRY = 60.0  # a time_expire earlier than placing + 1 minute is moved to + 1 minute
# Notify retries after a failed delivery: 15s,15s,30s,3m,10m,20m,30m,30m,30m,60m,3h,3h,3h,6h,6h (≈ 24 h)
RETRY_SCHEDULE: tuple[float, ...] = (
    15,
    15,
    30,
    180,
    600,
    1200,
    1800,
    1800,
    1800,
    3600,
    10800,
    10800,
    10800,
    21600,
    21600,
)


@dataclass
class Order:
    out_trade_no: str
    trade_type: str  # JSAPI | NATIVE
    appid: str
    description: str
    total: int
    notify_url: str
    time_expire: float  # epoch seconds; after it the buyer cannot pay
    params: dict[str, Any]  # what a repeated prepay must match
    attach: str | None = None
    openid: str | None = None  # JSAPI: the payer the order was placed for
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: float | None = None
    payer: str | None = None  # who paid
    prepay_ids: dict[str, float] = field(default_factory=dict)  # prepay_id -> valid until
    code_url: str | None = None  # Native: the current one (placing again replaces it)
    refunded: int = 0  # fen refunded or being refunded

    def transaction(self, mchid: str, at: Callable[[float], str]) -> dict[str, Any]:
        """The order as the query answer and the TRANSACTION.SUCCESS resource show it."""
        data: dict[str, Any] = {"appid": self.appid, "mchid": mchid, "out_trade_no": self.out_trade_no}
        data["trade_state"] = self.trade_state
        data["trade_state_desc"] = TRADE_STATE_DESC[self.trade_state]
        data["trade_type"] = self.trade_type
        if self.attach is not None:
            data["attach"] = self.attach
        if self.transaction_id is None:  # unpaid: WeChat Pay shows the amount without payer_total
            data["amount"] = {"total": self.total, "payer_currency": "CNY"}
            return data
        data |= {"transaction_id": self.transaction_id, "bank_type": "OTHERS", "promotion_detail": []}
        data["success_time"] = at(self.success_time or 0.0)
        data["payer"] = {"openid": self.payer}
        data["amount"] = {
            "total": self.total,
            "payer_total": self.total,
            "currency": "CNY",
            "payer_currency": "CNY",
        }
        return data


TRADE_STATE_DESC = {
    "NOTPAY": "订单未支付",
    "SUCCESS": "支付成功",
    "REFUND": "转入退款",
    "CLOSED": "已关闭",
}


@dataclass
class Refund:
    out_refund_no: str
    refund_id: str
    out_trade_no: str
    transaction_id: str
    refund: int
    total: int
    notify_url: str | None
    created_at: float
    params: dict[str, Any]
    reason: str | None = None
    status: str = "PROCESSING"
    success_time: float | None = None


@dataclass
class PlatformState:
    """``merchant_public_key``/``merchant_serial``: the merchant API certificate the shop signs with.
    ``private_key``/``public_key_id``: the platform's own pair (generated unless given), which the shop
    lists in its config as ``{public_key_id: public_key}``."""

    mch_id: str
    appid: str
    api_v3_key: bytes
    merchant_public_key: RSAPublicKey
    merchant_serial: str
    # epoch seconds; ``advance`` moves it (order expiry, retry schedule, stale timestamps)
    clock: Callable[[], float] = time.time
    private_key: RSAPrivateKey | None = None
    public_key_id: str = ""
    offset: float = 0.0
    notify_timeout: float = 5.0  # WeChat Pay waits this long for 200/204, then counts a failure
    retry_schedule: tuple[float, ...] = RETRY_SCHEDULE
    auto_settle_refunds: bool = True  # settle each refund shortly after it is asked for (else: settle_refund)
    refund_outcome: str = "SUCCESS"  # how auto-settled refunds end: SUCCESS, ABNORMAL or CLOSED
    refund_delay: float = 0.05  # real seconds between the refund's answer and its settling
    on_paid: Callable[[str], None] | None = None  # told each payer's openid (the OA's 48-hour window)
    orders: dict[str, Order] = field(default_factory=dict)
    refunds: dict[str, Refund] = field(default_factory=dict)
    code_urls: dict[str, str] = field(default_factory=dict)  # current code_url -> out_trade_no

    def __post_init__(self) -> None:
        if len(self.api_v3_key) != 32:
            raise ValueError("the APIv3 key has 32 bytes")
        if self.private_key is None:
            self.private_key = crypto.new_key()
        if not self.public_key_id:
            self.public_key_id = f"PUB_KEY_ID_0114{self.mch_id}{time.strftime('%Y%m%d', time.gmtime())}00"
        self._ids = itertools.count(1)

    @property
    def key(self) -> RSAPrivateKey:
        assert self.private_key is not None  # set in __post_init__
        return self.private_key

    @property
    def public_key(self) -> RSAPublicKey:
        """WeChat Pay's public key (``pub_key.pem``) the shop verifies answers and notifications with."""
        return self.key.public_key()

    def now(self) -> float:
        return self.clock() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the platform's clock forward (orders expire, notify retries fall due; ``deliver_due``
        sends them)."""
        self.offset += seconds

    def rfc3339(self, moment: float) -> str:
        return datetime.fromtimestamp(moment, BEIJING).replace(microsecond=0).isoformat()

    def _serial(self) -> str:
        return f"{next(self._ids):06d}"

    def _stamp(self, fmt: str) -> str:
        return datetime.fromtimestamp(self.now(), BEIJING).strftime(fmt)

    def _transaction_id(self) -> str:
        return f"4200002{self._serial()[-3:]}{self._stamp('%Y%m%d')}{crypto.digits(10)}"  # 28 digits

    def _refund_id(self) -> str:
        return f"50300{self._serial()[-4:]}{self._stamp('%Y%m%d')}{crypto.digits(12)}"  # 29 digits

    def _prepay_id(self) -> str:
        tail = crypto.random_text(16, "0123456789abcdef") + self._serial()[-4:]
        return f"wx{self._stamp('%d%H%M%S')}{tail}"  # wx + 28 characters
