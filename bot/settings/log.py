"""Logging: LOG_LEVEL, LOG_FORMAT."""

from __future__ import annotations

from pydantic import Field, field_validator

from bot.settings.base import ConcernSettings

LOG_FORMATS = ("text", "json")


class LogSettings(ConcernSettings):
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: str = Field(
        "text",
        description="text: one readable line a record; json: one JSON object a line, for log collectors.",
    )

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, v: str) -> str:
        v = v.upper()
        if v not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return v

    @field_validator("log_format")
    @classmethod
    def _check_format(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in LOG_FORMATS:
            raise ValueError("must be text or json")
        return v
