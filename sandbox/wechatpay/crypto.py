"""The platform's side of API v3's cryptography, written apart from the shop's client (the layers keep the
emulator from importing it, and two independent implementations that agree are a better test than one
agreeing with itself). Formats: see the package docstring."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEME = "WECHATPAY2-SHA256-RSA2048"
_ALNUM = string.ascii_letters + string.digits
# mchid="…",nonce_str="…",… in any order, each value in double quotes
_AUTH_PARAM = re.compile(r'\s*([a-z_]+)="([^"]*)"\s*(?:,|$)')


def new_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def random_text(length: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def digits(length: int) -> str:
    return random_text(length, string.digits)


def sign(key: RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode("ascii")


def verify(key: RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def parse_authorization(header: str) -> dict[str, str] | None:
    """The parameters of ``WECHATPAY2-SHA256-RSA2048 mchid="…",…``; None if it is not of that form."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme != SCHEME or not rest:
        return None
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        match = _AUTH_PARAM.match(rest, pos)
        if match is None:
            return None
        params[match.group(1)] = match.group(2)
        pos = match.end()
    return params


def seal(api_v3_key: bytes, plaintext: bytes, associated_data: str) -> dict[str, str]:
    """A notification's ``resource``: AEAD_AES_256_GCM with a 12-character nonce, as WeChat Pay sends it."""
    nonce = random_text(12)
    ciphertext = AESGCM(api_v3_key).encrypt(nonce.encode(), plaintext, associated_data.encode())
    return {
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(ciphertext).decode("ascii"),
        "nonce": nonce,
        "associated_data": associated_data,
    }


def signed_headers(
    key: RSAPrivateKey, serial: str, body: bytes, timestamp: int, nonce: str | None = None
) -> dict[str, str]:
    """The ``Wechatpay-*`` headers WeChat Pay puts on answers and notifications."""
    nonce = nonce or random_text(32)
    return {
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": sign(key, f"{timestamp}\n{nonce}\n".encode() + body + b"\n"),
        "Wechatpay-Timestamp": str(timestamp),
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": SCHEME,
    }
