"""Loading the merchant's credentials from the PEM files WeChat Pay hands out, without ever showing them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from handlers.wechat.pay import PayConfig
from tests.wechatpay_rig import API_V3_KEY, APP_ID, MCH_ID, SERIAL, merchant_key, platform_key

PRIVATE = merchant_key().private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)
PUBLIC = (
    platform_key()
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
)


def certificate() -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(platform_key().public_key())
        .serial_number(0x5157F09EFDC096DE15EBE81A47057A72)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=365))
        .sign(platform_key(), hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def load(**overrides: object) -> PayConfig:
    fields: dict[str, object] = {
        "mch_id": MCH_ID,
        "app_id": APP_ID,
        "private_key": PRIVATE.decode(),
        "serial_no": SERIAL,
        "api_v3_key": API_V3_KEY.decode(),
        "platform_keys": {"PUB_KEY_ID_0114SANDBOX": PUBLIC},
        "notify_url": "https://shop.example/wechat/pay/notify",
    }
    return PayConfig.load(**(fields | overrides))  # type: ignore[arg-type]


def test_loads_the_merchant_key_and_a_wechat_pay_public_key_or_certificate(tmp_path: Path) -> None:
    (tmp_path / "apiclient_key.pem").write_bytes(PRIVATE)
    config = load(
        private_key=tmp_path / "apiclient_key.pem",
        platform_keys={"PUB_KEY_ID_0114SANDBOX": PUBLIC, "5157F09EFDC096DE15EBE81A47057A72": certificate()},
        api_url="https://api2.mch.weixin.qq.com/",
    )
    assert config.private_key.private_numbers() == merchant_key().private_numbers()
    numbers = {serial: key.public_numbers() for serial, key in config.platform_keys.items()}
    assert set(numbers.values()) == {platform_key().public_key().public_numbers()}
    assert config.api_url == "https://api2.mch.weixin.qq.com" and config.api_v3_key == API_V3_KEY


def test_asks_wechat_pay_to_sign_with_the_public_key_when_it_has_one() -> None:
    both = {"5157F09EFDC096DE15EBE81A47057A72": certificate(), "PUB_KEY_ID_0114SANDBOX": PUBLIC}
    assert load(platform_keys=both).accept_serial == "PUB_KEY_ID_0114SANDBOX"
    only_cert = {"5157F09EFDC096DE15EBE81A47057A72": certificate()}
    assert load(platform_keys=only_cert).accept_serial == "5157F09EFDC096DE15EBE81A47057A72"


def test_keys_never_appear_in_its_repr() -> None:
    text = repr(load())
    assert API_V3_KEY.decode() not in text and "PRIVATE" not in text and "private_key" not in text
    assert MCH_ID in text


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        (
            {"private_key": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"},
            "private key",
        ),
        ({"private_key": Path("/nonexistent/apiclient_key.pem")}, "cannot read"),
        ({"api_v3_key": "too short"}, "32 characters"),
        ({"platform_keys": {"PUB_KEY_ID_X": b"garbage"}}, "PUB_KEY_ID_X is not a PEM"),
        ({"platform_keys": {}}, "at least one"),
    ],
)
def test_what_does_not_load_says_why_in_one_line(overrides: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as e:
        load(**overrides)
    assert "\n" not in str(e.value) and "not a key" not in str(e.value)
