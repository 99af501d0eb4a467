"""Settings from the environment or ``.env``, one class per concern, composed into one ``Settings``.

Loading them has no side effects: nothing is created, generated or connected here (see ``bot.runtime``
for that). ``load_settings()`` reads every concern from the same environment and the same ``.env`` and
turns a bad value into a ``SettingsError`` of one line naming the variable
(``setting SHOP_CURRENCY: must be an ISO 4217 currency code ...``).

Each concern is a module here with one ``ConcernSettings`` subclass, an attribute of ``Settings``:
``settings.database`` (DATA_DIR, DATABASE_URL), ``settings.vault`` (VAULT_KEYS), ``settings.telegram``
(BOT_TOKEN, TELEGRAM_API_URL, ADMIN_IDS, PAYMENT_PROVIDER_TOKEN), ``settings.webhook`` (WEBHOOK_*),
``settings.redis`` (REDIS_URL), ``settings.shop`` (SHOP_CURRENCY, SHOP_TIMEZONE, RESERVATION_TTL_MINUTES),
``settings.scheduler`` (SCHEDULER, SUMMARY_TIME, PAYOUT_SCHEDULE, OUTBOX_RETENTION_DAYS), ``settings.log``
(LOG_LEVEL, LOG_FORMAT), ``settings.ops`` (OPS_LISTEN, OPS_RETRY_FIRST_SECONDS, OPS_RETRY_MAX_SECONDS) and
``settings.wechat`` (WECHAT_*: the official account), ``settings.wechatpay`` (WECHATPAY_*: WeChat Pay).
A field is named after its variable without the concern's prefix; every concern but ``ops``, ``wechat``
and ``wechatpay`` predates prefixes (the scheduler's variables were named by their issue) and has none, so
``settings.telegram.bot_token`` is ``BOT_TOKEN``.

Adding a concern (WeChat, WeChat Pay, commissions, …) is one new module and one field here::

    # bot/settings/wechat.py
    class WechatSettings(ConcernSettings, env_prefix="WECHAT_"):
        app_id: str | None = None              # WECHAT_APP_ID
        app_secret: SecretStr | None = None    # WECHAT_APP_SECRET

    # below, in Settings
    wechat: WechatSettings

Its variables then load from the same ``.env``, errors name them (``setting WECHAT_APP_ID: …``), and
``load_settings(wechat_app_id=...)`` overrides one. New concerns always get a prefix so that no two
concerns can claim the same variable. Document the new variables in ``.env.example`` and the README.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import BaseModel, ValidationError

from bot.settings.base import ConcernSettings, SettingsError
from bot.settings.database import DatabaseSettings
from bot.settings.log import LogSettings
from bot.settings.ops import OpsSettings
from bot.settings.redis import RedisSettings
from bot.settings.scheduler import SchedulerSettings
from bot.settings.shop import ShopSettings
from bot.settings.telegram import TelegramSettings
from bot.settings.vault import VaultSettings
from bot.settings.webhook import WEBHOOK_SECRET_RE, WebhookSettings, generate_webhook_secret
from bot.settings.wechat import WechatSettings
from bot.settings.wechatpay import WechatPaySettings

__all__ = [
    "WEBHOOK_SECRET_RE",
    "ConcernSettings",
    "DatabaseSettings",
    "LogSettings",
    "OpsSettings",
    "RedisSettings",
    "SchedulerSettings",
    "Settings",
    "SettingsError",
    "ShopSettings",
    "TelegramSettings",
    "VaultSettings",
    "WebhookSettings",
    "WechatPaySettings",
    "WechatSettings",
    "generate_webhook_secret",
    "load_settings",
]


class Settings(BaseModel):
    """Every setting, one attribute per concern. Build it with ``load_settings`` (or ``Settings.load``)."""

    # In the order of the README table: with several bad values, the first one here is reported.
    database: DatabaseSettings
    vault: VaultSettings
    telegram: TelegramSettings
    webhook: WebhookSettings
    redis: RedisSettings
    shop: ShopSettings
    scheduler: SchedulerSettings
    log: LogSettings
    ops: OpsSettings
    wechat: WechatSettings
    wechatpay: WechatPaySettings

    @classmethod
    def load(cls, _env_file: str | Path | None = ".env", **overrides: object) -> Self:
        """Every concern from the environment and ``_env_file`` (``None``: the environment only).
        ``overrides`` win over both and are named like the variables, in lower case
        (``admin_ids=[1]`` for ADMIN_IDS). Raises ``SettingsError``, one line naming the variable."""
        routed = _route(cls, overrides)
        concerns: dict[str, ConcernSettings] = {}
        for name, concern in _concerns(cls).items():
            try:
                # BaseSettings takes _env_file; mypy sees only the fields in the signature
                concerns[name] = concern(_env_file=_env_file, **routed[name])  # type: ignore[call-arg]
            except ValidationError as e:
                err = e.errors()[0]
                setting = concern.env_name(str(err["loc"][0])) if err["loc"] else "settings"
                msg = str(err["msg"]).removeprefix("Value error, ")
                raise SettingsError(f"setting {setting}: {msg}") from None
        return cls.model_validate(concerns)

    def replace(self, **values: object) -> Self:
        """A copy with some settings replaced, named as in ``load`` (not validated, like ``model_copy``)."""
        routed = _route(type(self), values)
        return self.model_copy(
            update={
                name: getattr(self, name).model_copy(update=changes)
                for name, changes in routed.items()
                if changes
            }
        )

    @property
    def vault_key_file(self) -> Path:
        """Where the vault key is generated when VAULT_KEYS is unset: ``DATA_DIR/vault.keys``."""
        return self.database.data_dir / "vault.keys"


def load_settings(_env_file: str | Path | None = ".env", **overrides: object) -> Settings:
    """Settings, or a SettingsError whose message is one line naming the setting."""
    return Settings.load(_env_file, **overrides)


def _concerns(cls: type[Settings]) -> dict[str, type[ConcernSettings]]:
    concerns = {}
    for name, field in cls.model_fields.items():
        assert isinstance(field.annotation, type) and issubclass(field.annotation, ConcernSettings), name
        concerns[name] = field.annotation
    return concerns


def _route(cls: type[Settings], values: dict[str, object]) -> dict[str, dict[str, object]]:
    """Values named like variables (``webhook_url``, ``wechat_app_id``) → concern → field → value."""
    owner = {
        concern.env_name(field).lower(): (name, field)
        for name, concern in _concerns(cls).items()
        for field in concern.model_fields
    }
    routed: dict[str, dict[str, object]] = {name: {} for name in cls.model_fields}
    for key, value in values.items():
        if key not in owner:
            raise TypeError(f"unknown setting {key!r}")
        name, field = owner[key]
        routed[name][field] = value
    return routed
