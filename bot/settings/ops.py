"""Operating the shop: OPS_LISTEN (health and metrics over HTTP in polling mode), OPS_RETRY_FIRST_SECONDS
and OPS_RETRY_MAX_SECONDS (how ``keyshop run`` waits out an outage of the database, Telegram or Redis)."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from bot.settings.base import ConcernSettings


class OpsSettings(ConcernSettings, env_prefix="OPS_"):
    listen: str | None = Field(
        None,
        description="HOST:PORT serving /healthz and /metrics; unset: only the webhook server serves them.",
    )
    retry_first_seconds: float = Field(
        1.0, gt=0, le=600, description="First pause after a dependency could not be reached."
    )
    retry_max_seconds: float = Field(
        60.0, gt=0, le=3600, description="Longest pause between tries (each doubles, up to this)."
    )

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, v: str | None) -> str | None:
        if not v:
            return None
        host, _, port = v.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:9090")
        return v

    @field_validator("retry_max_seconds")
    @classmethod
    def _check_retry(cls, v: float, info: ValidationInfo) -> float:
        if v < info.data.get("retry_first_seconds", 0):
            raise ValueError("must not be below OPS_RETRY_FIRST_SECONDS")
        return v
