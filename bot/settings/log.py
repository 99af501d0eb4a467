"""Logging: LOG_LEVEL."""

from __future__ import annotations

from pydantic import Field, field_validator

from bot.settings.base import ConcernSettings


class LogSettings(ConcernSettings):
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, v: str) -> str:
        v = v.upper()
        if v not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return v
