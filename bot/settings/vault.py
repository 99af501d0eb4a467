"""The keys that encrypt card keys at rest: VAULT_KEYS (the generated key file lives in DATA_DIR)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from bot.settings.base import ConcernSettings
from core.vault import parse_keys


class VaultSettings(ConcernSettings):
    vault_keys: SecretStr | None = Field(
        None, description="KID:BASE64 entries, comma separated; last encrypts."
    )

    @field_validator("vault_keys")
    @classmethod
    def _check_vault(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and v.get_secret_value().strip():
            parse_keys(v.get_secret_value())
            return v
        return None
