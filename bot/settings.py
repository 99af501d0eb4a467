"""Settings from the environment or ``.env``. Loading them has no side effects: nothing is created,
generated or connected here (see ``bot.runtime`` for that)."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.numbers import list_currencies
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.vault import parse_keys

# What Telegram accepts as setWebhook's secret_token (and sends back in X-Telegram-Bot-Api-Secret-Token)
WEBHOOK_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")


def generate_webhook_secret() -> str:
    """A fresh secret token for one run: 43 characters of A-Z a-z 0-9 _ - (what Telegram accepts)."""
    return secrets.token_urlsafe(32)


class SettingsError(Exception):
    """A setting has a bad value. The message is one line that names the setting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    data_dir: Path = Field(
        Path("./data"), description="Where the SQLite file and the generated vault key live."
    )
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file in DATA_DIR.")
    vault_keys: SecretStr | None = Field(
        None, description="KID:BASE64 entries, comma separated; last encrypts."
    )
    bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    admin_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    payment_provider_token: SecretStr | None = None
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "0.0.0.0:8080"
    redis_url: str | None = None
    shop_currency: str = "USD"
    shop_timezone: str = "UTC"
    reservation_ttl_minutes: int = Field(15, ge=1, le=24 * 60)
    log_level: str = "INFO"

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, v: object) -> object:
        if isinstance(v, str):
            parts = [p for p in v.replace(";", ",").replace(" ", ",").split(",") if p]
            try:
                return [int(p) for p in parts]
            except ValueError:
                raise ValueError("must be numeric Telegram user ids separated by commas") from None
        return v

    @field_validator("vault_keys")
    @classmethod
    def _check_vault(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and v.get_secret_value().strip():
            parse_keys(v.get_secret_value())
            return v
        return None

    @field_validator("shop_currency")
    @classmethod
    def _check_currency(cls, v: str) -> str:
        v = v.strip().upper()
        if v not in list_currencies() or v == "XTR":
            raise ValueError("must be an ISO 4217 currency code such as USD, EUR or CNY")
        return v

    @field_validator("shop_timezone")
    @classmethod
    def _check_tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as UTC or Asia/Shanghai") from None
        return v

    @field_validator("telegram_api_url")
    @classmethod
    def _check_api_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return v.rstrip("/")

    @field_validator("webhook_url")
    @classmethod
    def _check_webhook(cls, v: str | None) -> str | None:
        if v and not v.startswith("https://"):
            raise ValueError("must be an https:// URL (Telegram only calls https webhooks)")
        return v or None

    @field_validator("webhook_secret")
    @classmethod
    def _check_webhook_secret(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value():
            return None
        if not WEBHOOK_SECRET_RE.fullmatch(v.get_secret_value()):
            raise ValueError("must be 1 to 256 characters of A-Z a-z 0-9 _ - (Telegram refuses others)")
        return v

    @field_validator("webhook_listen")
    @classmethod
    def _check_listen(cls, v: str) -> str:
        host, _, port = v.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be HOST:PORT, e.g. 0.0.0.0:8080")
        return v

    @field_validator("redis_url")
    @classmethod
    def _check_redis(cls, v: str | None) -> str | None:
        if v and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL")
        return v or None

    @field_validator("bot_token")
    @classmethod
    def _check_token(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value().strip():
            return None
        if not re.fullmatch(r"\d{1,20}:[A-Za-z0-9_-]{20,}", v.get_secret_value().strip()):
            raise ValueError("does not look like a bot token (123456:ABC...) from @BotFather")
        return SecretStr(v.get_secret_value().strip())

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, v: str) -> str:
        v = v.upper()
        if v not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return v

    @property
    def database_url_resolved(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'keyshop.db').resolve()}"

    @property
    def vault_key_file(self) -> Path:
        return self.data_dir / "vault.keys"


def load_settings(**overrides: object) -> Settings:
    """Settings, or a SettingsError whose message is one line naming the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        err = e.errors()[0]
        name = str(err["loc"][0]).upper() if err["loc"] else "settings"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"setting {name}: {msg}") from None
