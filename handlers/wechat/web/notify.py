"""WeChat Pay's notifies (``/pay/notify`` for payments, ``/pay/refund-notify`` for refunds): signed by WeChat
Pay's key, the resource AES-256-GCM encrypted with the APIv3 key, checked and opened by the client
(``WechatPay.parse_notify``: signature by key id or certificate serial, timestamp within 5 minutes,
decryption). What it reports is taken by ``handlers.wechat.paid`` (the same as the reconciliation).

Answers, as WeChat Pay reads them: 204 when the notify is taken (or is not one we act on), 4xx/5xx with
``{"code": "FAIL", "message": …}`` to have it sent again later — for a notify that fails its checks
(logged; a forgery changes nothing) and when the shop could not even record the payment (it then comes
again, and the reconciliation asks meanwhile)."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from core.services import Services
from handlers.wechat.paid import Merchant, refund_settled, take_transaction
from handlers.wechat.pay import NotifyRejected, WechatPay

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # a notify is about 1 KB


class PayNotifies:
    def __init__(self, services: Services, pay: WechatPay, merchant: Merchant) -> None:
        self.services, self.pay, self.merchant = services, pay, merchant

    async def payment(self, request: web.Request) -> web.Response:
        """Receives: WeChat Pay's TRANSACTION.SUCCESS notify."""
        opened = await self._open(request)
        if isinstance(opened, web.Response):
            return opened
        if opened.event_type != "TRANSACTION.SUCCESS" or opened.transaction is None:
            log.info("wechat pay notify %s: %s, nothing to do", opened.id, opened.event_type)
            return web.Response(status=204)
        try:
            outcome = await take_transaction(self.services, opened.transaction, self.merchant)
        except Exception:
            log.exception("wechat pay notify %s: could not record the payment", opened.id)
            return _fail(500, "not recorded, send again")
        if outcome is None:  # not paid, or not our account's: logged by take_transaction
            return _fail(400, "not a payment of this merchant")
        return web.Response(status=204)

    async def refund(self, request: web.Request) -> web.Response:
        """Receives: WeChat Pay's REFUND.SUCCESS / REFUND.ABNORMAL / REFUND.CLOSED notify."""
        opened = await self._open(request)
        if isinstance(opened, web.Response):
            return opened
        if opened.refund is None:
            log.info("wechat pay refund notify %s: %s, nothing to do", opened.id, opened.event_type)
            return web.Response(status=204)
        try:
            await refund_settled(self.services, opened.refund)
        except Exception:
            log.exception("wechat pay refund notify %s: could not record the refund", opened.id)
            return _fail(500, "not recorded, send again")
        return web.Response(status=204)

    async def _open(self, request: web.Request):  # type: ignore[no-untyped-def]
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _refuse(request, 413, "too large")
        try:
            body = await _read(request)
        except Exception:
            return _refuse(request, 400, "unreadable body")
        if len(body) > MAX_BODY:
            return _refuse(request, 413, "too large")
        try:
            return self.pay.parse_notify(request.headers, body)
        except NotifyRejected as e:
            return _refuse(request, 401, e.reason)


async def _read(request: web.Request) -> bytes:
    """The body, to its end or one byte past ``MAX_BODY``. One ``read(n)`` returns what has arrived so far
    (a chunk, a packet), not n bytes: a notify in pieces would be cut and fail its signature."""
    body = bytearray()
    while len(body) <= MAX_BODY:
        chunk = await request.content.read(MAX_BODY + 1 - len(body))
        if not chunk:
            break
        body += chunk
    return bytes(body)


def _refuse(request: web.Request, status: int, why: str) -> web.Response:
    log.warning("wechat pay notify %s refused (%d): %s", request.path, status, why)
    return _fail(status, why)


def _fail(status: int, message: str) -> web.Response:
    body = json.dumps({"code": "FAIL", "message": message[:100]}, ensure_ascii=False)
    return web.Response(status=status, text=body, content_type="application/json")


def add_notify_routes(app: web.Application, notifies: PayNotifies, base_path: str) -> None:
    base = base_path.rstrip("/")
    app.router.add_post(base + "/pay/notify", notifies.payment)
    app.router.add_post(base + "/pay/refund-notify", notifies.refund)
