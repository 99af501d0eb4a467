"""Webhook mode instead of long polling: WEBHOOK_URL, WEBHOOK_SECRET, WEBHOOK_LISTEN."""

from __future__ import annotations

import re
import secrets

from pydantic import Field, SecretStr, field_validator

from bot.settings.base import ConcernSettings

# What Telegram accepts as setWebhook's secret_token (and sends back in X-Telegram-Bot-Api-Secret-Token)
WEBHOOK_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")


def generate_webhook_secret() -> str:
    """A fresh secret token for one run: 43 characters of A-Z a-z 0-9 _ - (what Telegram accepts)."""
    return secrets.token_urlsafe(32)


class WebhookSettings(ConcernSettings):
    webhook_url: str | None = Field(None, description="https:// URL Telegram calls; unset: long polling.")
    webhook_secret: SecretStr | None = Field(
        None, description="Secret token Telegram sends with each call; default: random per start."
    )
    webhook_listen: str = Field("0.0.0.0:8080", description="HOST:PORT the webhook server listens on.")

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
