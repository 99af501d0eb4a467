"""The buyer's side of WeChat Pay and the money's later life: paying a JSAPI order from the pay page
(``check_js_pay`` checks the page's ``getBrandWCPayRequest`` parameters as the WeChat client would;
``pay``/``pay_js``), scanning a Native ``code_url`` (``pay_native``), and refunds settling
(``settle_refund``, or on their own shortly after they are asked for)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from sandbox.wechatpay import crypto
from sandbox.wechatpay.notifies import Notifier
from sandbox.wechatpay.state import Order, Refund

# What the WeChat client shows the buyer instead of the payment sheet
SIGNATURE_FAILED = "支付验证签名失败"
PREPAY_EXPIRED = "prepay_id已失效，请重新下单"
ORDER_PAID = "该订单已支付"
ORDER_CLOSED = "订单已关闭"
ORDER_EXPIRED = "订单已超过商户设置的最晚支付成功时间，请重新发起支付"
WRONG_PAYER = "下单账号与支付账号不一致"
ORDER_INVALID = "商家订单信息有误，请重新下单支付"
CODE_EXPIRED = "二维码已过期，请刷新页面后再试"

JS_PARAMS = ("appId", "timeStamp", "nonceStr", "package", "signType", "paySign")
REFUND_SUMMARY = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}


class PaymentRefused(Exception):
    """What the buyer sees instead of paying (``reason``, WeChat's wording)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Buyer(Notifier):
    def __post_init__(self) -> None:
        super().__post_init__()
        self._settling: set[asyncio.Task[None]] = set()

    def check_js_pay(self, params: Mapping[str, str]) -> str:
        """The out_trade_no the page's ``getBrandWCPayRequest`` parameters would pay, checked as the WeChat
        client does: all six present, our AppID, signType RSA, a live prepay_id of an unpaid order, and
        ``paySign`` = the merchant key's RSA-SHA256 over ``appId\\ntimeStamp\\nnonceStr\\npackage\\n``.
        ``PaymentRefused`` otherwise."""
        if any(not isinstance(params.get(k), str) or not params.get(k) for k in JS_PARAMS):
            raise PaymentRefused(SIGNATURE_FAILED)
        if params["appId"] != self.appid or params["signType"] != "RSA" or not params["timeStamp"].isdigit():
            raise PaymentRefused(SIGNATURE_FAILED)
        message = "".join(f"{params[k]}\n" for k in JS_PARAMS[:4]).encode()
        if not crypto.verify(self.merchant_public_key, message, params["paySign"]):
            raise PaymentRefused(SIGNATURE_FAILED)
        prefix, _, prepay_id = params["package"].partition("=")
        order = next((o for o in self.orders.values() if prepay_id in o.prepay_ids), None)
        if prefix != "prepay_id" or order is None or order.prepay_ids[prepay_id] <= self.now():
            raise PaymentRefused(PREPAY_EXPIRED)
        self._payable(order)
        return order.out_trade_no

    async def pay_js(self, params: Mapping[str, str], *, openid: str) -> str:
        """The buyer ``openid`` pays from the pay page: ``check_js_pay`` then ``pay``; the transaction_id."""
        return await self.pay(self.check_js_pay(params), openid=openid)

    async def pay(self, out_trade_no: str, *, openid: str) -> str:
        """The buyer ``openid`` pays a JSAPI order (the one it was placed for, unpaid, not expired): it
        becomes SUCCESS and the TRANSACTION.SUCCESS notification's first attempt is made. The
        transaction_id; ``PaymentRefused`` otherwise."""
        order = self.orders.get(out_trade_no)
        if order is None or order.trade_type != "JSAPI":
            raise PaymentRefused(ORDER_INVALID)
        if not any(until > self.now() for until in order.prepay_ids.values()):
            raise PaymentRefused(PREPAY_EXPIRED)
        self._payable(order)
        if openid != order.openid:
            raise PaymentRefused(WRONG_PAYER)
        return await self._settle_payment(order, openid)

    async def pay_native(self, code_url: str, *, openid: str) -> str:
        """The buyer ``openid`` scans a Native QR code and pays (the current code_url of an unpaid order)."""
        order = self.orders.get(self.code_urls.get(code_url, ""))
        if order is None:
            raise PaymentRefused(CODE_EXPIRED)
        self._payable(order)
        return await self._settle_payment(order, openid)

    async def settle_refund(self, out_refund_no: str, status: str = "SUCCESS") -> None:
        """A PROCESSING refund ends SUCCESS, ABNORMAL or CLOSED (its money back to the order); the REFUND.*
        notification goes to the refund's notify_url, if it had one."""
        if status not in REFUND_SUMMARY:
            raise ValueError("status: SUCCESS, ABNORMAL or CLOSED")
        refund = self.refunds[out_refund_no]
        if refund.status != "PROCESSING":
            raise ValueError(f"refund {out_refund_no} is already {refund.status}")
        refund.status = status
        if status == "SUCCESS":
            refund.success_time = self.now()
        if status == "CLOSED":
            self.orders[refund.out_trade_no].refunded -= refund.refund
        if refund.notify_url:
            resource = self._refund_resource(refund)
            await self._notify(
                f"REFUND.{status}",
                REFUND_SUMMARY[status],
                resource,
                refund.notify_url,
                refund.out_trade_no,
                out_refund_no,
            )

    async def handle_abnormal_refund(self, out_refund_no: str) -> None:
        """The merchant handles an ABNORMAL refund in the merchant platform (发起异常退款: to the buyer's
        bank card, or the merchant's, as WeChat Pay allows): the same refund goes on and ends SUCCESS,
        with its REFUND.SUCCESS notification."""
        refund = self.refunds[out_refund_no]
        if refund.status != "ABNORMAL":
            raise ValueError(f"refund {out_refund_no} is {refund.status}, not ABNORMAL")
        refund.status = "PROCESSING"
        await self.settle_refund(out_refund_no, "SUCCESS")

    async def drain(self) -> None:
        """Wait until refunds being settled on their own are settled (and their notifications sent)."""
        while self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)

    async def close(self) -> None:
        for task in self._settling:
            task.cancel()
        await asyncio.gather(*self._settling, return_exceptions=True)
        await super().close()

    def _refund_created(self, refund: Refund) -> None:
        if not self.auto_settle_refunds:
            return
        task = asyncio.get_running_loop().create_task(self._settle_later(refund.out_refund_no))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settle_later(self, out_refund_no: str) -> None:
        await asyncio.sleep(self.refund_delay)  # after the refund's answer has reached the shop
        if self.refunds[out_refund_no].status == "PROCESSING":
            await self.settle_refund(out_refund_no, self.refund_outcome)

    def _payable(self, order: Order) -> None:
        if order.trade_state in ("SUCCESS", "REFUND"):
            raise PaymentRefused(ORDER_PAID)
        if order.trade_state == "CLOSED":
            raise PaymentRefused(ORDER_CLOSED)
        if order.time_expire <= self.now():
            raise PaymentRefused(ORDER_EXPIRED)

    async def _settle_payment(self, order: Order, openid: str) -> str:
        order.trade_state, order.payer = "SUCCESS", openid
        order.transaction_id, order.success_time = self._transaction_id(), self.now()
        if self.on_paid is not None:
            self.on_paid(openid)
        resource = order.transaction(self.mch_id, self.rfc3339)
        await self._notify("TRANSACTION.SUCCESS", "支付成功", resource, order.notify_url, order.out_trade_no)
        return order.transaction_id

    def _refund_resource(self, refund: Refund) -> dict[str, object]:
        """A REFUND.* notification's resource (``refund_status``, the payer's amounts)."""
        data: dict[str, object] = {
            "mchid": self.mch_id,
            "out_trade_no": refund.out_trade_no,
            "transaction_id": refund.transaction_id,
            "out_refund_no": refund.out_refund_no,
            "refund_id": refund.refund_id,
            "refund_status": refund.status,
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": refund.total,
                "refund": refund.refund,
                "payer_total": refund.total,
                "payer_refund": refund.refund,
            },
        }
        if refund.success_time is not None:
            data["success_time"] = self.rfc3339(refund.success_time)
        return data
