"""WeChat Pay from settings: on only when complete, and refused at start, in one line naming the setting,
when it could not work (no official account, prices not in CNY, no public address, a key that is not one).
Reminder templates from WECHAT_TEMPLATE_REMINDER."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from bot.settings import SettingsError, load_settings
from bot.wechat import reminder_templates, wechat_pay
from bot.wechat_sandbox import merchant_key
from handlers.wechat.api import WechatApi
from handlers.wechat.templates import ReminderTemplate

API_V3_KEY = "0123456789abcdefghijklmnopqrstuv"


def _files(tmp_path: Path) -> dict[str, object]:
    key = tmp_path / "apiclient_key.pem"
    key.write_bytes(
        merchant_key().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    pub = tmp_path / "pub_key.pem"
    platform = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub.write_bytes(
        platform.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return {
        "wechatpay_mch_id": "1900000109",
        "wechatpay_private_key_file": key,
        "wechatpay_cert_serial": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
        "wechatpay_api_v3_key": API_V3_KEY,
        "wechatpay_public_key_file": pub,
        "wechatpay_public_key_id": "PUB_KEY_ID_0114232134912410000000000000",
    }


ACCOUNT = {
    "wechat_app_id": "wx0123456789abcdef",
    "wechat_app_secret": "secret",
    "wechat_token": "keyshoptoken",
    "wechat_public_url": "https://shop.example.com",
    "shop_currency": "CNY",
}


async def test_wechat_pay_is_on_with_every_setting_and_notifies_come_under_the_public_url(
    tmp_path: Path,
) -> None:
    assert wechat_pay(load_settings(_env_file=None, **ACCOUNT)) is None  # no merchant: off, no error
    made = wechat_pay(load_settings(_env_file=None, **ACCOUNT, **_files(tmp_path)))
    assert made is not None
    pay, merchant = made
    assert (merchant.app_id, merchant.mch_id) == ("wx0123456789abcdef", "1900000109")
    assert pay.config.notify_url == "https://shop.example.com/wechat/pay/notify"
    assert pay.config.refund_notify_url == "https://shop.example.com/wechat/pay/refund-notify"
    await pay.close_session()


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"shop_currency": "USD"}, "SHOP_CURRENCY"),
        ({"wechat_public_url": ""}, "WECHAT_PUBLIC_URL"),
        ({"wechat_app_secret": ""}, "WECHATPAY_MCH_ID"),
        ({"wechat_token": ""}, "WECHATPAY_MCH_ID"),
    ],
)
def test_wechat_pay_that_could_not_work_stops_the_shop_in_one_line(
    tmp_path: Path, change: dict[str, str], setting: str
) -> None:
    settings = load_settings(_env_file=None, **{**ACCOUNT, **_files(tmp_path), **change})
    with pytest.raises(SettingsError) as e:
        wechat_pay(settings)
    assert str(e.value).startswith(f"setting {setting}:") and "\n" not in str(e.value)


def test_a_key_file_that_is_no_key_is_refused_without_showing_it(tmp_path: Path) -> None:
    files = _files(tmp_path)
    bad = tmp_path / "not_a_key.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ1dC1ub3QtYS1rZXk=\n-----END PRIVATE KEY-----\n")
    settings = load_settings(_env_file=None, **{**ACCOUNT, **files, "wechatpay_private_key_file": bad})
    with pytest.raises(SettingsError) as e:
        wechat_pay(settings)
    assert str(e.value).startswith("setting WECHATPAY_PRIVATE_KEY_FILE:") and "c2VjcmV0" not in str(e.value)


async def test_a_platform_certificate_is_known_by_its_serial_as_wechat_pay_writes_it_leading_zero_included(
    tmp_path: Path,
) -> None:
    """``Wechatpay-Serial`` is the certificate's serial in hex, byte by byte: a serial whose first digit
    is 0 keeps it (wechatpay-go fixed exactly this in its PR #46). Dropped, no notify would verify."""
    platform = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(platform.public_key())
        .serial_number(0x0A5157F09EFDC096DE15EBE81A47057A7232F1B8)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=365))
        .sign(platform, hashes.SHA256())
    )
    pem = tmp_path / "wechatpay_cert.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files = _files(tmp_path) | {"wechatpay_platform_cert_file": pem}
    made = wechat_pay(load_settings(_env_file=None, **ACCOUNT, **files))
    assert made is not None
    assert "0A5157F09EFDC096DE15EBE81A47057A7232F1B8" in made[0].config.platform_keys
    await made[0].close_session()


def test_reminder_templates_are_on_only_with_wechat_template_reminder_and_take_its_fields() -> None:
    api = object.__new__(WechatApi)  # never called here
    assert reminder_templates(api, load_settings(_env_file=None, **ACCOUNT)) is None
    on = load_settings(_env_file=None, **ACCOUNT, wechat_template_reminder="ngqIpbwh8bUf-cs_E")
    templates = reminder_templates(api, on)
    assert templates is not None and templates.reminder == ReminderTemplate("ngqIpbwh8bUf-cs_E")
    keys = {"wechat_template_reminder": "T1", "wechat_template_reminder_fields": "keyword1,keyword2"}
    templates = reminder_templates(api, load_settings(_env_file=None, **ACCOUNT, **keys))
    assert templates is not None and templates.reminder == ReminderTemplate(
        "T1", "keyword1", "keyword2", None
    )
