"""WeChat Pay API v3's cryptography, on ``cryptography``: request signatures, answer and notification
verification, the JSAPI ``paySign`` and the AES-256-GCM resource decryption. Pure functions, no I/O.

The formats (WeChat Pay's 签名生成/签名验证 rules, as the official wechatpay-go SDK implements them):

- request: ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",
  timestamp="…",serial_no="…"``, ``signature`` = base64 RSA PKCS#1 v1.5 SHA-256 of
  ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n`` (BODY empty for GET) with the merchant API key;
- answers and notifications: headers ``Wechatpay-Timestamp``, ``-Nonce``, ``-Signature``, ``-Serial``
  (the WeChat Pay public key id ``PUB_KEY_ID_…`` or a platform certificate serial), signature over
  ``TIMESTAMP\\nNONCE\\nBODY\\n``; the timestamp must be within 5 minutes of our clock;
- JSAPI: ``paySign`` over ``appId\\ntimeStamp\\nnonceStr\\nprepay_id=…\\n`` with the merchant API key;
- resources: AEAD_AES_256_GCM, key = the 32-byte APIv3 key, nonce and associated data as given (text)."""

from __future__ import annotations

import base64
import binascii
import secrets
import string
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEME = "WECHATPAY2-SHA256-RSA2048"
FRESH_WITHIN = 300  # seconds either side of our clock (WeChat Pay's own rule for its timestamps)
_NONCE_ALPHABET = string.ascii_letters + string.digits


def nonce(length: int = 32) -> str:
    """A random string of letters and digits (what WeChat Pay's SDKs send as ``nonce_str``)."""
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(length))


def rsa_sign(key: RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode("ascii")


def rsa_verify(key: RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def authorization(
    key: RSAPrivateKey,
    *,
    mch_id: str,
    serial_no: str,
    method: str,
    path_qs: str,
    body: bytes,
    timestamp: int,
    nonce_str: str,
) -> str:
    """The ``Authorization`` header for one request (``path_qs``: path and query exactly as sent)."""
    message = f"{method}\n{path_qs}\n{timestamp}\n{nonce_str}\n".encode() + body + b"\n"
    signature = rsa_sign(key, message)
    return (
        f'{SCHEME} mchid="{mch_id}",nonce_str="{nonce_str}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{serial_no}"'
    )


def js_pay_sign(key: RSAPrivateKey, app_id: str, timestamp: str, nonce_str: str, package: str) -> str:
    """``paySign`` for ``WeixinJSBridge.invoke('getBrandWCPayRequest', …)`` (signType ``RSA``)."""
    return rsa_sign(key, f"{app_id}\n{timestamp}\n{nonce_str}\n{package}\n".encode())


def check_signed(
    headers: Mapping[str, str], body: bytes, keys: Mapping[str, RSAPublicKey], now: float
) -> str | None:
    """Why ``body`` with ``headers`` (names lower-cased) is not provably WeChat Pay's, fresh; None if it is.
    The key is chosen by ``Wechatpay-Serial`` among ``keys``."""
    timestamp = headers.get("wechatpay-timestamp", "").strip()
    nonce_str = headers.get("wechatpay-nonce", "").strip()
    signature = headers.get("wechatpay-signature", "").strip()
    serial = headers.get("wechatpay-serial", "").strip()
    if not (timestamp and nonce_str and signature and serial):
        return "unsigned (Wechatpay-* headers missing)"
    kind = headers.get("wechatpay-signature-type", SCHEME).strip()
    if kind != SCHEME:
        return f"unsupported signature type {kind[:40]!r}"
    if not timestamp.isdigit() or len(timestamp) > 12:
        return "bad Wechatpay-Timestamp"
    if abs(now - int(timestamp)) > FRESH_WITHIN:
        return f"stale timestamp ({int(now) - int(timestamp)} s from our clock)"
    key = keys.get(serial) or keys.get(serial.upper())
    if key is None:
        return f"unknown Wechatpay-Serial {serial[:64]!r}"
    if not rsa_verify(key, f"{timestamp}\n{nonce_str}\n".encode() + body + b"\n", signature):
        return "bad signature"
    return None


def decrypt(api_v3_key: bytes, nonce_str: str, ciphertext: str, associated_data: str) -> bytes | None:
    """The plaintext of an AEAD_AES_256_GCM resource, None when it does not decrypt (wrong key, tampered)."""
    try:
        data = base64.b64decode(ciphertext, validate=True)
        return AESGCM(api_v3_key).decrypt(nonce_str.encode(), data, associated_data.encode())
    except (InvalidTag, binascii.Error, ValueError):
        return None
