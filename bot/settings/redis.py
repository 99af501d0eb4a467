"""What several bot instances share (conversation state, throttle, user cache, send pace): REDIS_URL."""

from __future__ import annotations

from pydantic import Field, field_validator

from bot.settings.base import ConcernSettings


class RedisSettings(ConcernSettings):
    redis_url: str | None = Field(
        None,
        description="redis:// URL shared by the bot's instances (conversation state, throttle, user cache, "
        "send pace); unset: each process keeps them in memory.",
    )

    @field_validator("redis_url")
    @classmethod
    def _check_redis(cls, v: str | None) -> str | None:
        if v and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL")
        return v or None
