"""A thin WeChat Pay API v3 client on aiohttp: JSAPI and Native prepay, the JSAPI page's parameters, query,
close, refund, refund query, and notifications (``parse_notify``).

Every request is signed (``signing.authorization``) over the exact bytes sent; every 2xx answer must carry
a valid, fresh ``Wechatpay-*`` signature by one of ``PayConfig.platform_keys`` or it is refused
(``WechatPayUnverified``: as unknown an outcome as a timeout). Error answers (4xx/5xx) are unsigned at
WeChat Pay and raise ``WechatPayError`` as they are. Paths: wechatpay-go's services/payments/jsapi,
native and refunddomestic. Keys and the ``Authorization`` header are never logged."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
from yarl import URL

from handlers.wechat.pay import signing
from handlers.wechat.pay.config import PayConfig
from handlers.wechat.pay.errors import WechatPayUnavailable, WechatPayUnverified, api_error
from handlers.wechat.pay.models import (
    Malformed,
    Notification,
    RefundResult,
    Transaction,
    refund_from,
    transaction_from,
)
from handlers.wechat.pay.notify import parse_notify

log = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds for one API call, all in
USER_AGENT = f"keyshop-wechatpay/1 aiohttp/{aiohttp.__version__}"
BEIJING = timezone(timedelta(hours=8), "+08:00")
T = TypeVar("T")


class WechatPay:
    def __init__(
        self,
        config: PayConfig,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = TIMEOUT,
    ) -> None:
        self.config, self.clock = config, clock
        self._session, self._own_session = session, session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def close_session(self) -> None:
        """Close the HTTP session if this client opened it (one passed in belongs to the caller)."""
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def jsapi_prepay(
        self,
        *,
        out_trade_no: str,
        description: str,
        total: int,
        openid: str,
        time_expire: datetime,
        attach: str | None = None,
    ) -> str:
        """Place a JSAPI order (paid on a page inside WeChat by ``openid``); its ``prepay_id`` (valid 2 h).
        Placing it again with the same parameters gives a fresh prepay_id for the same order."""
        body = self._order(out_trade_no, description, total, time_expire, attach)
        body["payer"] = {"openid": openid}
        answer = await self._call("POST", "/v3/pay/transactions/jsapi", body=body)
        return _field(answer, "prepay_id")

    async def native_prepay(
        self, *, out_trade_no: str, description: str, total: int, time_expire: datetime
    ) -> str:
        """Place a Native order (a QR code scanned by a buyer on another device); its ``code_url``."""
        body = self._order(out_trade_no, description, total, time_expire, None)
        answer = await self._call("POST", "/v3/pay/transactions/native", body=body)
        return _field(answer, "code_url")

    def jsapi_params(self, prepay_id: str) -> dict[str, str]:
        """What the pay page passes to ``WeixinJSBridge.invoke('getBrandWCPayRequest', …)``, signed."""
        timestamp, nonce_str = str(int(self.clock())), signing.nonce()
        package = f"prepay_id={prepay_id}"
        return {
            "appId": self.config.app_id,
            "timeStamp": timestamp,
            "nonceStr": nonce_str,
            "package": package,
            "signType": "RSA",
            "paySign": signing.js_pay_sign(
                self.config.private_key, self.config.app_id, timestamp, nonce_str, package
            ),
        }

    async def query(self, out_trade_no: str) -> Transaction:
        """The order as WeChat Pay has it (``OrderNotFound`` when it was never placed)."""
        path = f"/v3/pay/transactions/out-trade-no/{_segment(out_trade_no)}"
        answer = await self._call("GET", path, query={"mchid": self.config.mch_id})
        transaction = _parsed(transaction_from, answer)
        if transaction.out_trade_no != out_trade_no or transaction.mchid != self.config.mch_id:
            raise WechatPayUnverified("the answer is about another order")
        return transaction

    async def close(self, out_trade_no: str) -> None:
        """Close an unpaid order so it can no longer be paid (closing twice is fine). ``OrderPaid`` when
        the buyer paid first: query it and deliver."""
        path = f"/v3/pay/transactions/out-trade-no/{_segment(out_trade_no)}/close"
        await self._call("POST", path, body={"mchid": self.config.mch_id})

    async def refund(
        self, *, out_trade_no: str, out_refund_no: str, refund: int, total: int, reason: str | None = None
    ) -> RefundResult:
        """Ask for a refund of ``refund`` fen of the order's ``total``, to whoever paid. Usually answered
        PROCESSING; the result comes by notification (``refund_notify_url``) or ``query_refund``. After a
        timeout, retry with the same ``out_refund_no`` (a new one could refund twice)."""
        body: dict[str, Any] = {"out_trade_no": out_trade_no, "out_refund_no": out_refund_no}
        if reason:
            body["reason"] = reason
        if self.config.refund_notify_url:
            body["notify_url"] = self.config.refund_notify_url
        body["amount"] = {"refund": _fen(refund), "total": _fen(total), "currency": "CNY"}
        answer = await self._call("POST", "/v3/refund/domestic/refunds", body=body)
        return _parsed(refund_from, answer)

    async def query_refund(self, out_refund_no: str) -> RefundResult:
        path = f"/v3/refund/domestic/refunds/{_segment(out_refund_no)}"
        return _parsed(refund_from, await self._call("GET", path))

    def parse_notify(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """A notification's content once verified; ``NotifyRejected(reason)`` otherwise (answer 4xx)."""
        return parse_notify(
            headers,
            body,
            keys=self.config.platform_keys,
            api_v3_key=self.config.api_v3_key,
            mch_id=self.config.mch_id,
            app_id=self.config.app_id,
            now=self.clock(),
        )

    def _order(
        self, out_trade_no: str, description: str, total: int, time_expire: datetime, attach: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "appid": self.config.app_id,
            "mchid": self.config.mch_id,
            "description": description,
            "out_trade_no": out_trade_no,
            "time_expire": rfc3339(time_expire),
            "notify_url": self.config.notify_url,
            "amount": {"total": _fen(total), "currency": "CNY"},
        }
        if attach is not None:
            body["attach"] = attach
        return body

    async def _call(
        self, method: str, path: str, *, query: Mapping[str, str] | None = None, body: Any = None
    ) -> dict[str, Any]:
        """One signed call; the answer's JSON object ({} for 204) once its signature checks out."""
        path_qs = f"{path}?{urlencode(query)}" if query else path
        payload = b"" if body is None else _dumps(body).encode()
        headers = {
            "Authorization": signing.authorization(
                self.config.private_key,
                mch_id=self.config.mch_id,
                serial_no=self.config.serial_no,
                method=method,
                path_qs=path_qs,
                body=payload,
                timestamp=int(self.clock()),
                nonce_str=signing.nonce(),
            ),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "Wechatpay-Serial": self.config.accept_serial,
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self._session is None:
            self._session = aiohttp.ClientSession()
        url = URL(self.config.api_url + path_qs, encoded=True)
        try:
            async with self._session.request(
                method, url, data=payload or None, headers=headers, timeout=self._timeout
            ) as resp:
                status, answer = resp.status, await resp.read()
                answer_headers = {k.lower(): v for k, v in resp.headers.items()}
        except (TimeoutError, aiohttp.ClientError) as e:
            log.warning("wechatpay %s %s: no answer (%s)", method, path, type(e).__name__)
            raise WechatPayUnavailable(f"{method} {path}: no answer ({type(e).__name__})") from e
        if not 200 <= status < 300:
            code, message = _error(answer)
            log.warning("wechatpay %s %s: %d %s %s", method, path, status, code, message[:200])
            raise api_error(status, code, message)
        why = signing.check_signed(answer_headers, answer, self.config.platform_keys, self.clock())
        if why is not None:
            log.error("wechatpay %s %s: answer %d refused: %s", method, path, status, why)
            raise WechatPayUnverified(f"{method} {path}: answer refused: {why}")
        if not answer:
            return {}
        try:
            data = json.loads(answer)
        except ValueError:
            raise WechatPayUnverified(f"{method} {path}: signed answer is not JSON") from None
        if not isinstance(data, dict):
            raise WechatPayUnverified(f"{method} {path}: signed answer is not a JSON object")
        return data


def _dumps(body: Any) -> str:
    # compact, Chinese unescaped: the bytes signed are the bytes sent
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def rfc3339(moment: datetime) -> str:
    """``moment`` as WeChat Pay writes times: ``2025-05-20T13:29:35+08:00`` (Beijing time; any offset is
    valid RFC 3339, this is the one WeChat Pay shows). A naive datetime is refused: its instant is unknown."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("time_expire needs a time zone")
    return moment.astimezone(BEIJING).replace(microsecond=0).isoformat()


def _segment(value: str) -> str:
    # out_trade_no may hold | and *; quoting everything but [A-Za-z0-9_.-~] keeps the path one segment
    return quote(value, safe="")


def _fen(amount: int) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError("amounts are positive whole numbers of fen")
    return amount


def _field(answer: Mapping[str, Any], key: str) -> str:
    value = answer.get(key)
    if not isinstance(value, str) or not value:
        raise WechatPayUnverified(f"signed answer has no {key}")
    return value


def _parsed(parse: Callable[[Mapping[str, Any]], T], answer: Mapping[str, Any]) -> T:
    try:
        return parse(answer)
    except Malformed as e:
        raise WechatPayUnverified(f"signed answer malformed: {e}") from None


def _error(raw: bytes) -> tuple[str, str]:
    try:
        data = json.loads(raw) if raw else {}
    except (ValueError, UnicodeDecodeError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    code, message = data.get("code"), data.get("message")
    return (code if isinstance(code, str) else "", message if isinstance(message, str) else "")
