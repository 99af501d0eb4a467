"""A merchant's WeChat Pay credentials, loaded from the PEM files the merchant platform hands out:

- ``apiclient_key.pem``: the merchant API private key (signs every request and the JSAPI ``paySign``),
  with the serial number of its certificate (``serial_no`` in ``Authorization``);
- the APIv3 key: 32 characters set in the merchant platform (decrypts notifications);
- WeChat Pay's keys that sign answers and notifications, by ``Wechatpay-Serial``: the WeChat Pay public
  key (``pub_key.pem``, id ``PUB_KEY_ID_…``, what new merchants get) and/or platform certificates
  (``wechatpay_….pem``, by certificate serial). During a switch-over both sign, so both may be listed.

Keys never appear in ``repr`` (nor, therefore, in logs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

API_URL = "https://api.mch.weixin.qq.com"
Pem = str | bytes | Path  # PEM text, or the path of a PEM file


@dataclass(frozen=True, kw_only=True)
class PayConfig:
    mch_id: str
    app_id: str  # the official account's AppID, bound to the merchant id
    private_key: RSAPrivateKey = field(repr=False)
    serial_no: str  # the merchant API certificate's serial number
    api_v3_key: bytes = field(repr=False)
    platform_keys: Mapping[str, RSAPublicKey] = field(repr=False)  # Wechatpay-Serial -> key
    api_url: str = API_URL
    notify_url: str  # where WeChat Pay posts payment notifications (HTTPS, no query)
    refund_notify_url: str | None = None  # None: refunds are not notified (query them)

    def __post_init__(self) -> None:
        if len(self.api_v3_key) != 32:
            raise ValueError("the APIv3 key has 32 characters")
        if not self.platform_keys:
            raise ValueError("at least one WeChat Pay public key or platform certificate is needed")

    @property
    def accept_serial(self) -> str:
        """The serial we ask WeChat Pay to sign its answers with (``Wechatpay-Serial`` on requests): the
        public key id when we have one (public key mode), else a platform certificate's serial."""
        serials = sorted(self.platform_keys)
        return next((s for s in serials if s.startswith("PUB_KEY_ID_")), serials[0])

    @classmethod
    def load(
        cls,
        *,
        mch_id: str,
        app_id: str,
        private_key: Pem,
        serial_no: str,
        api_v3_key: str | bytes,
        platform_keys: Mapping[str, Pem],
        notify_url: str,
        refund_notify_url: str | None = None,
        api_url: str = API_URL,
    ) -> PayConfig:
        """From PEM text or files: ``platform_keys`` maps each ``Wechatpay-Serial`` to a public key
        (``BEGIN PUBLIC KEY``) or a platform certificate (``BEGIN CERTIFICATE``). Raises ``ValueError``
        with a one-line reason (never the key) when something does not load."""
        pem = _read(private_key, "the merchant private key")
        try:
            key = load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            raise ValueError("the merchant private key is not an unencrypted PEM private key") from None
        if not isinstance(key, RSAPrivateKey):
            raise ValueError("the merchant private key is not an RSA key")
        secret = api_v3_key.encode() if isinstance(api_v3_key, str) else api_v3_key
        return cls(
            mch_id=mch_id,
            app_id=app_id,
            private_key=key,
            serial_no=serial_no,
            api_v3_key=secret,
            platform_keys={serial: _public_key(pem, serial) for serial, pem in platform_keys.items()},
            notify_url=notify_url,
            refund_notify_url=refund_notify_url,
            api_url=api_url.rstrip("/"),
        )


def _read(pem: Pem, what: str) -> bytes:
    if isinstance(pem, Path):
        try:
            return pem.read_bytes()
        except OSError as e:
            raise ValueError(f"cannot read {what} from {pem}: {e.strerror}") from None
    return pem.encode() if isinstance(pem, str) else pem


def _public_key(pem: Pem, serial: str) -> RSAPublicKey:
    data = _read(pem, f"WeChat Pay key {serial}")
    key: object
    try:
        if b"BEGIN CERTIFICATE" in data:
            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = load_pem_public_key(data)
    except ValueError:
        raise ValueError(f"WeChat Pay key {serial} is not a PEM public key or certificate") from None
    if not isinstance(key, RSAPublicKey):
        raise ValueError(f"WeChat Pay key {serial} is not an RSA key")
    return key
