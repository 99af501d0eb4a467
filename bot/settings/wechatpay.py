"""WeChat Pay (API v3) for the official account: WECHATPAY_MCH_ID, WECHATPAY_PRIVATE_KEY_FILE,
WECHATPAY_CERT_SERIAL, WECHATPAY_API_V3_KEY, WECHATPAY_PUBLIC_KEY_FILE, WECHATPAY_PUBLIC_KEY_ID,
WECHATPAY_PLATFORM_CERT_FILE and WECHATPAY_API_URL. WeChat Pay is on when the merchant number, its key,
certificate serial and APIv3 key are set with a way to check WeChat Pay's signatures (its public key and
id, or a platform certificate): ``configured``. It also needs the official account (WECHAT_*) and
WECHAT_PUBLIC_URL, and a shop in CNY; the composition root refuses to start otherwise, in one line."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from bot.settings.base import ConcernSettings

_MCH_ID_RE = re.compile(r"[0-9]{8,12}")
_SERIAL_RE = re.compile(r"[0-9A-Fa-f]{8,64}")
_PUB_KEY_ID_RE = re.compile(r"PUB_KEY_ID_[0-9A-Za-z]{1,64}")


class WechatPaySettings(ConcernSettings, env_prefix="WECHATPAY_"):
    mch_id: str | None = Field(None, description="The merchant number (商户号), digits.")
    private_key_file: Path | None = Field(
        None, description="The merchant API private key (apiclient_key.pem), signing our requests."
    )
    cert_serial: str | None = Field(None, description="The serial number of the merchant API certificate.")
    api_v3_key: SecretStr | None = Field(
        None, description="The APIv3 key (32 characters), decrypting WeChat Pay's notifies."
    )
    public_key_file: Path | None = Field(
        None, description="WeChat Pay's public key (pub_key.pem), checking its signatures."
    )
    public_key_id: str | None = Field(None, description="That public key's id (PUB_KEY_ID_…).")
    platform_cert_file: Path | None = Field(
        None, description="Or a WeChat Pay platform certificate (older merchants), checking its signatures."
    )
    api_url: str = Field("https://api.mch.weixin.qq.com", description="WeChat Pay's API, or the emulator.")

    @property
    def configured(self) -> bool:
        """WeChat Pay is on: we can sign requests and check and open what WeChat Pay sends."""
        checks = bool(self.public_key_file and self.public_key_id) or self.platform_cert_file is not None
        return bool(self.mch_id and self.private_key_file and self.cert_serial and self.api_v3_key and checks)

    @field_validator("mch_id")
    @classmethod
    def _check_mch_id(cls, v: str | None) -> str | None:
        if v and not _MCH_ID_RE.fullmatch(v):
            raise ValueError("must be the merchant number (商户号): 8 to 12 digits")
        return v or None

    @field_validator("cert_serial")
    @classmethod
    def _check_serial(cls, v: str | None) -> str | None:
        if v and not _SERIAL_RE.fullmatch(v):
            raise ValueError("must be the certificate's serial number in hex (证书序列号)")
        return v.upper() if v else None

    @field_validator("api_v3_key")
    @classmethod
    def _check_api_v3_key(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value():
            return None
        if len(v.get_secret_value().encode()) != 32:
            raise ValueError("must be the APIv3 key: exactly 32 characters")
        return v

    @field_validator("public_key_id")
    @classmethod
    def _check_public_key_id(cls, v: str | None) -> str | None:
        if v and not _PUB_KEY_ID_RE.fullmatch(v):
            raise ValueError("must be the public key's id as the merchant platform shows it: PUB_KEY_ID_…")
        return v or None

    @field_validator("private_key_file", "public_key_file", "platform_cert_file")
    @classmethod
    def _check_file(cls, v: Path | None) -> Path | None:
        if v is None or str(v) in ("", "."):
            return None
        if not v.is_file():
            raise ValueError(f"no such file: {v}")
        return v

    @field_validator("api_url")
    @classmethod
    def _check_api_url(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")):
            raise ValueError("must be an http(s):// URL")
        return v.rstrip("/")
