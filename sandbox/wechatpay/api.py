"""The merchant API the shop calls: the ``Authorization`` check, then JSAPI/Native prepay, query, close,
refund and refund query. Each endpoint takes the path's parameters, the query and the JSON body, and
returns ``(status, answer)`` (None for 204), or raises ``PayError``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sandbox.wechatpay import crypto
from sandbox.wechatpay import errors as e
from sandbox.wechatpay.buyer import Buyer
from sandbox.wechatpay.state import DEFAULT_EXPIRY, MIN_EXPIRY, PREPAY_TTL, Order, Refund

Answer = tuple[int, dict[str, Any] | None]
FRESH_WITHIN = 300  # the request's timestamp within 5 minutes of the platform's clock
OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class PayApi(Buyer):
    def authenticate(self, method: str, path_qs: str, headers: Mapping[str, str], body: bytes) -> None:
        """The request is the merchant's: ``Authorization`` of our scheme, our mchid and the merchant
        certificate's serial, a fresh timestamp and a signature over exactly what was sent (401
        SIGN_ERROR otherwise, in WeChat Pay's wordings); ``Accept`` and ``User-Agent`` present."""
        params = crypto.parse_authorization(headers.get("Authorization", ""))
        needed = ("mchid", "nonce_str", "signature", "timestamp", "serial_no")
        if params is None or any(not params.get(k) for k in needed):
            raise e.sign_error("Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》")
        if params["mchid"] != self.mch_id:
            raise e.sign_error("商户号不存在或与证书不匹配")
        if params["serial_no"] != self.merchant_serial:
            raise e.sign_error("商户证书序列号有误。请使用签名私钥匹配的证书序列号")
        stamp = params["timestamp"]
        if not stamp.isdigit() or abs(self.now() - int(stamp)) > FRESH_WITHIN:
            raise e.sign_error("Http头Authorization中的timestamp与发起请求的时间不得超过5分钟")
        message = f"{method}\n{path_qs}\n{stamp}\n{params['nonce_str']}\n".encode() + body + b"\n"
        if not crypto.verify(self.merchant_public_key, message, params["signature"]):
            raise e.sign_error("签名错误")
        if not headers.get("Accept") or not headers.get("User-Agent"):
            raise e.invalid("Http头缺少Accept或User-Agent")

    def prepay_jsapi(self, match: Mapping[str, str], query: Mapping[str, str], body: Any) -> Answer:
        """``POST /v3/pay/transactions/jsapi``: ``{"prepay_id"}`` (valid 2 h); placing the same order
        again gives a new one."""
        order = self._place("JSAPI", _object(body))
        prepay_id = self._prepay_id()
        order.prepay_ids[prepay_id] = self.now() + PREPAY_TTL
        return 200, {"prepay_id": prepay_id}

    def prepay_native(self, match: Mapping[str, str], query: Mapping[str, str], body: Any) -> Answer:
        """``POST /v3/pay/transactions/native``: ``{"code_url"}``; placing it again replaces the code."""
        order = self._place("NATIVE", _object(body))
        if order.code_url is not None:
            self.code_urls.pop(order.code_url, None)
        order.code_url = f"weixin://wxpay/bizpayurl?pr={crypto.random_text(7)}"
        self.code_urls[order.code_url] = order.out_trade_no
        return 200, {"code_url": order.code_url}

    def query_order(self, match: Mapping[str, str], query: Mapping[str, str], body: Any) -> Answer:
        """``GET /v3/pay/transactions/out-trade-no/{no}?mchid=``: the order."""
        self._mchid(query.get("mchid"))
        order = self._order(match["out_trade_no"])
        return 200, order.transaction(self.mch_id, self.rfc3339)

    def close_order(self, match: Mapping[str, str], query: Mapping[str, str], body: Any) -> Answer:
        """``POST …/{no}/close`` ``{"mchid"}``: 204, also when already closed; a paid order 400 ORDERPAID."""
        self._mchid(_object(body).get("mchid"))
        order = self._order(match["out_trade_no"])
        if order.trade_state in ("SUCCESS", "REFUND"):
            raise e.PayError(400, e.ORDER_PAID, "订单已支付")
        order.trade_state = "CLOSED"
        return 204, None

    def create_refund(self, match: Mapping[str, str], query: Mapping[str, str], body: Any) -> Answer:
        """``POST /v3/refund/domestic/refunds``: a PROCESSING refund of a paid order, within what is left
        to refund; the same out_refund_no with the same amounts answers the same refund, and asks again for
        one that was CLOSED (WeChat Pay's rule: a failed refund is submitted again under its own number)."""
        data = _object(body)
        out_refund_no = _text(data, "out_refund_no", 64)
        if not OUT_REFUND_NO.fullmatch(out_refund_no):
            raise e.param("out_refund_no格式错误")
        amount = _object(data.get("amount"), "amount")
        refund, total = _fen(amount, "refund"), _fen(amount, "total")
        if amount.get("currency") != "CNY":
            raise e.param("amount.currency必填，且只支持CNY")
        notify_url = data.get("notify_url")
        if notify_url is not None:
            _notify_url(notify_url)
        reason = data.get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 80):
            raise e.param("reason格式错误")
        order = self._paid_order(data)
        params = {"order": order.out_trade_no, "refund": refund, "total": total}
        existing = self.refunds.get(out_refund_no)
        if existing is not None:
            if existing.params != params:  # the docs' REFUND_FEE_MISMATCH; status the emulator's choice
                raise e.invalid("订单金额或退款金额与之前请求不一致，请核实后再试")
            if existing.status == "CLOSED":  # "一笔退款失败后重新提交，请不要更换退款单号": asked again
                if order.refunded + refund > order.total:
                    raise e.invalid("申请退款金额超过订单可退金额")
                existing.status = "PROCESSING"
                order.refunded += refund
                order.trade_state = "REFUND"
                self._refund_created(existing)
            return 200, self._refund_answer(existing)
        if total != order.total:
            raise e.invalid("您的请求参数与订单信息不一致")
        if order.refunded + refund > order.total:
            raise e.invalid("申请退款金额超过订单可退金额")
        assert order.transaction_id is not None  # paid
        new = Refund(
            out_refund_no,
            self._refund_id(),
            order.out_trade_no,
            order.transaction_id,
            refund,
            total,
            notify_url,
            self.now(),
            params,
            reason,
        )
        self.refunds[out_refund_no] = new
        order.refunded += refund
        order.trade_state = "REFUND"
        self._refund_created(new)
        return 200, self._refund_answer(new)

    def query_refund(self, match: Mapping[str, str], query: Mapping[str, str], body: Any) -> Answer:
        """``GET /v3/refund/domestic/refunds/{out_refund_no}``."""
        refund = self.refunds.get(match["out_refund_no"])
        if refund is None:
            raise e.PayError(404, e.RESOURCE_NOT_EXISTS, "退款单不存在")
        return 200, self._refund_answer(refund)

    def _place(self, trade_type: str, data: dict[str, Any]) -> Order:
        appid, mchid = _text(data, "appid", 32), _text(data, "mchid", 32)
        self._mchid(mchid)
        if appid != self.appid:
            raise e.PayError(400, e.APPID_MCHID_NOT_MATCH, "AppID和mch_id不匹配")
        out_trade_no = _text(data, "out_trade_no", 32)
        if not OUT_TRADE_NO.fullmatch(out_trade_no):
            raise e.param("out_trade_no格式错误：6-32位数字、大小写字母_-|*")
        description = _text(data, "description", 127)
        notify_url = _notify_url(data.get("notify_url"))
        amount = _object(data.get("amount"), "amount")
        total = _fen(amount, "total")
        if amount.get("currency", "CNY") != "CNY":
            raise e.param("amount.currency只支持CNY")
        expire = _time(data.get("time_expire"))
        attach = data.get("attach")
        if attach is not None and (not isinstance(attach, str) or len(attach) > 128):
            raise e.param("attach格式错误")
        openid = None
        if trade_type == "JSAPI":
            payer = _object(data.get("payer"), "payer")
            openid = _text(payer, "openid", 128)
        params = {"type": trade_type, "appid": appid, "description": description, "total": total}
        params |= {"notify_url": notify_url, "expire": expire, "attach": attach, "openid": openid}
        order = self.orders.get(out_trade_no)
        if order is not None:
            if order.trade_state in ("SUCCESS", "REFUND"):
                raise e.PayError(400, e.ORDER_PAID, "该订单已支付")
            if order.trade_state == "CLOSED":
                raise e.PayError(400, e.ORDER_CLOSED, "订单已关闭")
            if order.params != params:
                raise e.PayError(403, e.OUT_TRADE_NO_USED, "商户订单号重复")
            return order
        now = self.now()
        deadline = now + DEFAULT_EXPIRY if expire is None else max(expire, now + MIN_EXPIRY)
        order = Order(out_trade_no, trade_type, appid, description, total, notify_url, deadline, params)
        order.attach, order.openid = attach, openid
        self.orders[out_trade_no] = order
        return order

    def _mchid(self, mchid: Any) -> None:
        if not isinstance(mchid, str) or not mchid:
            raise e.param("mchid必填")
        if mchid != self.mch_id:  # only the signing merchant's own; the emulator's wording
            raise e.param("mchid与请求的商户号不一致")

    def _order(self, out_trade_no: str) -> Order:
        order = self.orders.get(out_trade_no)
        if order is None:
            raise e.PayError(404, e.ORDER_NOT_EXIST, "订单不存在")
        return order

    def _paid_order(self, data: dict[str, Any]) -> Order:
        out_trade_no, transaction_id = data.get("out_trade_no"), data.get("transaction_id")
        if out_trade_no is None and transaction_id is None:
            raise e.param("out_trade_no和transaction_id必须二选一")
        order = next(
            (
                o
                for o in self.orders.values()
                if o.out_trade_no == out_trade_no or (transaction_id and o.transaction_id == transaction_id)
            ),
            None,
        )
        if order is None or order.transaction_id is None:
            raise e.PayError(404, e.RESOURCE_NOT_EXISTS, "订单不存在")
        return order

    def _refund_answer(self, refund: Refund) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "refund_id": refund.refund_id,
            "out_refund_no": refund.out_refund_no,
            "transaction_id": refund.transaction_id,
            "out_trade_no": refund.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": self.rfc3339(refund.created_at),
            "status": refund.status,
            "funds_account": "AVAILABLE",
            "amount": {
                "total": refund.total,
                "refund": refund.refund,
                "from": [],
                "payer_total": refund.total,
                "payer_refund": refund.refund,
                "settlement_refund": refund.refund,
                "settlement_total": refund.total,
                "discount_refund": 0,
                "currency": "CNY",
                "refund_fee": 0,
            },
            "promotion_detail": [],
        }
        if refund.success_time is not None:
            answer["success_time"] = self.rfc3339(refund.success_time)
        return answer


def _object(value: Any, name: str = "body") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise e.param(f"{name}必填，且须为JSON对象")
    return value


def _text(data: Mapping[str, Any], key: str, longest: int) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > longest:
        raise e.param(f"{key}必填，且不超过{longest}个字符")
    return value


def _fen(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise e.param(f"amount.{key}须为正整数（分）")
    return value


def _time(value: Any) -> float | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or "T" not in value:
        raise e.param("time_expire须为rfc3339格式，如2018-06-08T10:34:56+08:00")
    return moment.timestamp()


def _notify_url(value: Any) -> str:
    """HTTPS, absolute, no query (WeChat Pay's rule). Plain http only to loopback: the emulator's
    concession to shops under test."""
    if not isinstance(value, str) or len(value) > 255:
        raise e.param("notify_url必填，且不超过255个字符")
    parts = urlsplit(value)
    secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK)
    if not secure or not parts.hostname or parts.query:
        raise e.param("notify_url须为https地址，且不能携带参数")
    return value
