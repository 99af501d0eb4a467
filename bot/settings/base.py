"""What every concern's settings class shares: one ``.env``, other concerns' names ignored."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(Exception):
    """A setting has a bad value. The message is one line that names the setting."""


class ConcernSettings(BaseSettings):
    """The settings of one concern, read from the environment and ``.env`` (the environment wins).

    A subclass may set ``env_prefix`` (``class WechatSettings(ConcernSettings, env_prefix="WECHAT_")``):
    its field ``app_id`` is then read from ``WECHAT_APP_ID``. Names of other concerns are ignored.
    """

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable that sets ``field``: ``WECHAT_APP_ID`` for ``app_id``."""
        return (cls.model_config.get("env_prefix", "") + field).upper()
