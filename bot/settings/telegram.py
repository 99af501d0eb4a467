"""The Telegram bot: BOT_TOKEN, TELEGRAM_API_URL, ADMIN_IDS, PAYMENT_PROVIDER_TOKEN."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from bot.settings.base import ConcernSettings

# Telegram user ids: ASCII digits, positive, at most 52 significant bits (core.telegram.org/bots/api#user).
_USER_ID = re.compile(r"[0-9]{1,16}")
MAX_USER_ID = 2**52


class TelegramSettings(ConcernSettings):
    bot_token: SecretStr | None = Field(None, description="Bot token from @BotFather.")
    telegram_api_url: str = Field("https://api.telegram.org", description="Bot API server.")
    admin_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="Telegram user ids of the admins, comma separated."
    )
    payment_provider_token: SecretStr | None = Field(
        None, description="Fiat payment provider token from @BotFather."
    )

    @field_validator("bot_token")
    @classmethod
    def _check_token(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value().strip():
            return None
        if not re.fullmatch(r"\d{1,20}:[A-Za-z0-9_-]{20,}", v.get_secret_value().strip()):
            raise ValueError("does not look like a bot token (123456:ABC...) from @BotFather")
        return SecretStr(v.get_secret_value().strip())

    @field_validator("telegram_api_url")
    @classmethod
    def _check_api_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return v.rstrip("/")

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, v: object) -> object:
        if isinstance(v, str):
            parts = [p for p in v.replace(";", ",").replace(" ", ",").split(",") if p]
            if not all(_USER_ID.fullmatch(p) for p in parts):
                raise ValueError("must be numeric Telegram user ids separated by commas")
            v = [int(p) for p in parts]
        if isinstance(v, list) and not all(type(i) is int and 0 < i < MAX_USER_ID for i in v):
            # A user id is positive and has at most 52 significant bits; a negative id is a group or a
            # channel, where admin alerts must never go.
            raise ValueError("must be Telegram user ids (positive; a group's or channel's id is not one)")
        return v
