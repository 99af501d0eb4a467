"""The WeChat official account: WECHAT_APP_ID, WECHAT_APP_SECRET, WECHAT_TOKEN, WECHAT_AES_KEY,
WECHAT_CALLBACK_PATH, WECHAT_API_URL, WECHAT_PUBLIC_URL, WECHAT_OAUTH_URL, WECHAT_TEMPLATE_REMINDER and
WECHAT_TEMPLATE_REMINDER_FIELDS. The channel is on when both WECHAT_APP_ID and WECHAT_TOKEN are set
(``configured``); the others only matter then."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator

from bot.settings.base import ConcernSettings

# What WeChat's console accepts (服务器配置): a token of 3-32 letters and digits, an EncodingAESKey of
# exactly 43 letters and digits (base64 of 32 bytes without its "="), an AppID "wx" + 16 hex digits.
_TOKEN_RE = re.compile(r"[A-Za-z0-9]{3,32}")
_AES_KEY_RE = re.compile(r"[A-Za-z0-9]{43}")
_APP_ID_RE = re.compile(r"wx[0-9a-f]{16}")
_PATH_RE = re.compile(r"/[A-Za-z0-9._~/-]*")
# A template's id (模板ID) as the console shows it, e.g. "ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY": no
# spaces, no Chinese (pasting the template's title, 会员到期提醒, is the mistake this catches).
_TEMPLATE_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A field's key in a template (thing1, time2, character_string3; keyword1 in older templates).
_TEMPLATE_KEY_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")


def template_keys(text: str) -> tuple[str, ...]:
    """``"thing1,time2,thing3"`` -> the keys of a reminder template's fields for the product, the end and
    the note (two: no note). Raises ValueError naming what is wrong."""
    keys = tuple(k.strip() for k in text.split(","))
    if not 2 <= len(keys) <= 3 or not all(_TEMPLATE_KEY_RE.fullmatch(k) for k in keys):
        raise ValueError(
            "must be the template's keys for the product, the end and the note, e.g. thing1,time2,thing3"
        )
    if len(set(keys)) != len(keys):
        raise ValueError("each key may appear once, e.g. thing1,time2,thing3")
    return keys


class WechatSettings(ConcernSettings, env_prefix="WECHAT_"):
    app_id: str | None = Field(None, description="The official account's AppID (wx + 16 hex digits).")
    app_secret: SecretStr | None = Field(None, description="The AppSecret, for the API's access_token.")
    token: SecretStr | None = Field(None, description="The Token of 服务器配置, signing WeChat's pushes.")
    aes_key: SecretStr | None = Field(
        None, description="The EncodingAESKey (43 characters); needed for compatible and safe mode."
    )
    callback_path: str = Field("/wechat", description="Path WeChat posts to, on the webhook server.")
    api_url: str = Field("https://api.weixin.qq.com", description="WeChat's API, or the emulator.")
    public_url: str | None = Field(
        None,
        description="https://… where buyers' phones reach this server: the pay and order pages and WeChat "
        "Pay's notifies are under it, at WECHAT_CALLBACK_PATH/pay/… and /order/… (its host is the OAuth "
        "domain registered in the official account).",
    )
    oauth_url: str = Field("https://open.weixin.qq.com", description="WeChat's OAuth pages, or the emulator.")
    template_reminder: str | None = Field(
        None,
        description="The id of a membership-expiry template (会员到期提醒) of the account: a reminder due "
        "while the buyer's window is closed goes as this template message instead of waiting.",
    )
    template_reminder_fields: str = Field(
        "thing1,time2,thing3",
        description="The keys of that template's fields for the product (≤ 20 characters), the end time and "
        "a note, in that order; two keys: a template without a note.",
    )

    @property
    def configured(self) -> bool:
        """The channel is on: WeChat can be verified against our token and told who we are."""
        return bool(self.app_id and self.token)

    @field_validator("app_id")
    @classmethod
    def _check_app_id(cls, v: str | None) -> str | None:
        if v and not _APP_ID_RE.fullmatch(v):
            raise ValueError("must be the AppID of the official account: wx and 16 hex digits")
        return v or None

    @field_validator("app_secret")
    @classmethod
    def _check_app_secret(cls, v: SecretStr | None) -> SecretStr | None:
        return v if v is not None and v.get_secret_value() else None

    @field_validator("token")
    @classmethod
    def _check_token(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value():
            return None
        if not _TOKEN_RE.fullmatch(v.get_secret_value()):
            raise ValueError("must be 3 to 32 letters and digits (what WeChat's console accepts)")
        return v

    @field_validator("aes_key")
    @classmethod
    def _check_aes_key(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value():
            return None
        if not _AES_KEY_RE.fullmatch(v.get_secret_value()):
            raise ValueError("must be the EncodingAESKey: exactly 43 letters and digits")
        return v

    @field_validator("callback_path")
    @classmethod
    def _check_path(cls, v: str) -> str:
        if not _PATH_RE.fullmatch(v) or "//" in v:
            raise ValueError("must be a URL path starting with /, e.g. /wechat")
        return v

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, v: str | None) -> str | None:
        if not v:
            return None
        if not v.startswith(("https://", "http://")) or "?" in v or "#" in v:
            raise ValueError(
                "must be the https:// address buyers reach this server at, e.g. https://shop.example.com"
            )
        return v.rstrip("/")

    @field_validator("template_reminder")
    @classmethod
    def _check_template_id(cls, v: str | None) -> str | None:
        v = (v or "").strip()
        if v and not _TEMPLATE_ID_RE.fullmatch(v):
            raise ValueError("must be the template's id (模板ID: letters, digits, - and _), not its title")
        return v or None

    @field_validator("template_reminder_fields")
    @classmethod
    def _check_template_keys(cls, v: str) -> str:
        return ",".join(template_keys(v))

    @property
    def template_reminder_keys(self) -> tuple[str, ...]:
        return template_keys(self.template_reminder_fields)

    @field_validator("api_url", "oauth_url")
    @classmethod
    def _check_api_url(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")):
            raise ValueError("must be an http(s):// URL")
        return v.rstrip("/")
