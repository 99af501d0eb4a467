"""A local WeChat Pay platform (API v3, direct merchant): the merchant API the shop calls, the buyer who
pays, and the notifications WeChat Pay sends. There is no v3 sandbox at WeChat Pay; nothing here reaches it.

What it enforces (sources: pay.weixin.qq.com/doc/v3/merchant API pages, the official wechatpay-go SDK,
``../shared/WECHAT.md``; the emulator's own choices are marked in the code):

* requests (``api.authenticate``): ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",
  signature="…",timestamp="…",serial_no="…"``, the signature RSA-SHA256 (PKCS#1 v1.5) by the merchant
  key over ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n`` exactly as sent, our mchid, the merchant
  certificate's serial, a timestamp within 5 minutes — else 401 SIGN_ERROR; ``Accept`` and ``User-Agent``
  present (400 INVALID_REQUEST).
* answers: 2xx signed with the platform's own key (``public_key``/``public_key_id`` ``PUB_KEY_ID_…``):
  ``Wechatpay-Timestamp/-Nonce/-Signature/-Serial/-Signature-Type`` over ``TIMESTAMP\\nNONCE\\nBODY\\n``
  (empty for 204); errors ``{"code","message"}`` unsigned, as WeChat Pay sends them.
* orders: JSAPI (``payer.openid`` required) and Native (``code_url`` ``weixin://wxpay/bizpayurl?pr=…``);
  mchid ours (400 PARAM_ERROR), appid bound (400 APPID_MCHID_NOT_MATCH), out_trade_no 6–32 of
  ``[0-9A-Za-z_-|*]``, description ≤ 127, integer fen, CNY, RFC 3339 ``time_expire`` (at least placing
  + 1 minute; none: 7 days), HTTPS ``notify_url`` without query (http to loopback allowed). Placing the
  same out_trade_no again with the same parameters answers a new prepay_id/code_url (a replaced code_url
  stops working); other parameters or the other product: 403 OUT_TRADE_NO_USED (merchants also report
  400 INVALID_REQUEST "201 商户订单号重复"); paid: 400 ORDERPAID; closed: 400 ORDER_CLOSED. A prepay_id
  works 2 hours. Query ``?mchid=`` (unpaid: amount without payer_total; 404 ORDER_NOT_EXIST); close
  ``{"mchid"}`` → 204, again 204, paid → 400 ORDERPAID.
* the buyer (``buyer``): ``check_js_pay`` verifies the page's ``getBrandWCPayRequest`` parameters as the
  WeChat client would (our appId, signType RSA, ``paySign`` by the merchant key over
  ``appId\\ntimeStamp\\nnonceStr\\npackage\\n``, a live prepay_id); ``pay``/``pay_js``/``pay_native``
  pay an unpaid, unexpired, unclosed order — JSAPI only by the openid it was placed for — and send
  TRANSACTION.SUCCESS. ``on_paid`` hears each payer (for the official account's 48-hour window).
* refunds: ``out_trade_no`` or ``transaction_id`` of a paid order (else 404 RESOURCE_NOT_EXISTS),
  ``amount.refund/total/currency`` all required, total = the order's, refunds ≤ what was paid (400
  INVALID_REQUEST), the same out_refund_no answers the same refund (other amounts: 400); PROCESSING,
  then SUCCESS/ABNORMAL/CLOSED (``settle_refund``, or on their own after ``refund_delay`` as
  ``refund_outcome`` says) with REFUND.* to the refund's notify_url (none given: no notification). A
  CLOSED refund asked again under its own out_refund_no goes on (PROCESSING again: WeChat Pay's rule for a
  failed refund); an ABNORMAL one goes on when the merchant handles it (``handle_abnormal_refund``, the
  merchant platform's 发起异常退款) and ends SUCCESS.
* notifications (``notifies``): ``{id, create_time, resource_type: "encrypt-resource", event_type,
  summary, resource: {original_type, algorithm: "AEAD_AES_256_GCM", ciphertext, nonce, associated_data}}``
  encrypted with the APIv3 key, signed like answers; success is 200/204 within ``notify_timeout`` (5 s);
  otherwise retried after 15s, 15s, 30s, 3m, 10m, 20m, 30m, 30m, 30m, 1h, 3h, 3h, 3h, 6h, 6h on the
  platform's clock (``advance`` + ``deliver_due``, or ``flush``), every attempt recorded in ``notifies``.
  Hostile controls spoil the next one: drop, duplicate, tamper (signature, SIGNTEST probe, ciphertext),
  backdate, another amount, wrong key, unknown serial, another merchant; ``replay`` resends an old one
  byte for byte; ``break_next_answer`` spoils an API answer's signature.

By concern: ``crypto`` (signatures, AES-GCM), ``errors`` (codes), ``state`` (orders, refunds, clock),
``notifies`` (delivery, retries, hostile controls), ``buyer`` (paying, refunds settling), ``api``
(endpoints), ``server`` (``PayPlatform``, ``serve``).
"""

from sandbox.wechatpay.buyer import PaymentRefused
from sandbox.wechatpay.errors import PayError
from sandbox.wechatpay.notifies import Attempt, Notice
from sandbox.wechatpay.server import PayPlatform, serve
from sandbox.wechatpay.state import RETRY_SCHEDULE, Order, Refund

__all__ = [
    "RETRY_SCHEDULE",
    "Attempt",
    "Notice",
    "Order",
    "PayError",
    "PayPlatform",
    "PaymentRefused",
    "Refund",
    "serve",
]
