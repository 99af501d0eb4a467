"""WeChat Pay's notifications (支付通知, 退款结果通知): verify, decrypt, parse — or refuse with a reason.

A notification is ``POST notify_url`` with the ``Wechatpay-*`` signature headers and a JSON body
``{id, create_time, event_type, resource_type: "encrypt-resource", summary, resource: {algorithm:
"AEAD_AES_256_GCM", ciphertext, nonce, associated_data, original_type}}``. Its timestamp is checked here
(±5 min of our clock: the SDKs' own checks are looser) so an old notification replayed by whoever saw one
is refused. The decrypted transaction or refund must be our merchant's (and, for a payment, our AppID's);
whether its amount is the order's is the caller's to check."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from handlers.wechat.pay.errors import NotifyRejected
from handlers.wechat.pay.models import Malformed, Notification, refund_from, transaction_from
from handlers.wechat.pay.signing import check_signed, decrypt

MAX_BODY = 64 * 1024  # a notification is about 1 KB
ALGORITHM = "AEAD_AES_256_GCM"


def parse_notify(
    headers: Mapping[str, str],
    body: bytes,
    *,
    keys: Mapping[str, RSAPublicKey],
    api_v3_key: bytes,
    mch_id: str,
    app_id: str,
    now: float,
) -> Notification:
    """The notification in ``body``; ``NotifyRejected`` if it is not WeChat Pay's, fresh, and ours."""
    if len(body) > MAX_BODY:
        raise NotifyRejected(f"body too large ({len(body)} bytes)")
    lowered = {k.lower(): v for k, v in headers.items()}
    why = check_signed(lowered, body, keys, now)
    if why is not None:
        raise NotifyRejected(why)
    envelope = _json_object(body, "body")
    event_type, event_id = envelope.get("event_type"), envelope.get("id")
    resource = envelope.get("resource")
    if not isinstance(event_type, str) or not isinstance(event_id, str) or not isinstance(resource, dict):
        raise NotifyRejected("not a notification (id, event_type or resource missing)")
    if envelope.get("resource_type", "encrypt-resource") != "encrypt-resource":
        raise NotifyRejected("resource_type is not encrypt-resource")
    if resource.get("algorithm") != ALGORITHM:
        raise NotifyRejected("resource algorithm is not AEAD_AES_256_GCM")
    parts = [resource.get(k, "") for k in ("nonce", "ciphertext", "associated_data")]
    if not all(isinstance(p, str) for p in parts):
        raise NotifyRejected("resource fields are not strings")
    plain = decrypt(api_v3_key, *parts)
    if plain is None:
        raise NotifyRejected("resource does not decrypt with our APIv3 key")
    data = _json_object(plain, "resource")
    try:
        if event_type.startswith("TRANSACTION."):
            transaction = transaction_from(data)
            if transaction.mchid != mch_id or transaction.appid != app_id:
                raise NotifyRejected("transaction is not for our mchid/appid")
            return Notification(event_id, event_type, transaction, None)
        if event_type.startswith("REFUND."):
            if data.get("mchid") != mch_id:
                raise NotifyRejected("refund is not for our mchid")
            return Notification(event_id, event_type, None, refund_from(data, notified=True))
    except Malformed as e:
        raise NotifyRejected(f"resource malformed: {e}") from None
    return Notification(event_id, event_type, None, None)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise NotifyRejected(f"{what} is not JSON") from None
    if not isinstance(data, dict):
        raise NotifyRejected(f"{what} is not a JSON object")
    return data
