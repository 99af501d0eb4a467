"""Wiring: from settings to a migrated database and the services, including the vault key file."""

from __future__ import annotations

import logging
import os
import stat
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from bot.settings import Settings, SettingsError
from core import migrate
from core.context import Context, ShopConfig
from core.db import Database
from core.resilience import Backoff, Dependency, is_db_outage, retry_until_up
from core.services import Services
from core.services.reminders import invoice_reminders_on
from core.uow import UnitOfWork
from core.vault import Vault, new_key_spec, parse_keys
from handlers.money import exponent
from scheduler.spec import Schedule

log = logging.getLogger("keyshop")

_BANNER = "!" * 78


def shop_config(settings: Settings) -> ShopConfig:
    config = ShopConfig(
        currency=settings.shop.shop_currency,
        currency_exponent=exponent(settings.shop.shop_currency),
        reservation_ttl=timedelta(minutes=settings.shop.reservation_ttl_minutes),
        timezone=ZoneInfo(settings.shop.shop_timezone),
        commission_rates=settings.shop.commission_rates_bp,
        commission_hold=timedelta(days=settings.shop.commission_hold_days),
        payout_minimum=settings.shop.payout_minimum,
        stars_payout_rate=settings.shop.stars_payout_rate,
        reminder_days=settings.shop.reminder_days_tuple,
        invoice_reminder=timedelta(minutes=settings.shop.invoice_reminder_minutes),
        owner_ids=tuple(str(i) for i in settings.telegram.admin_ids),
    )
    if not invoice_reminders_on(config) and settings.shop.invoice_reminder_minutes:
        log.warning(
            "INVOICE_REMINDER_MINUTES=%d is not shorter than RESERVATION_TTL_MINUTES=%d: "
            "no invoice reminders are sent",
            settings.shop.invoice_reminder_minutes,
            settings.shop.reservation_ttl_minutes,
        )
    return config


def _holds_keys(conn: Connection) -> bool:
    return UnitOfWork(conn, write=False).repo.keys.count_all() > 0


async def _db_holds_keys(db: Database) -> bool:
    return await db.read(_holds_keys)


async def load_vault(settings: Settings, db: Database) -> Vault:
    """VAULT_KEYS if set; else DATA_DIR/vault.keys; else generate that file (mode 0600) with a loud
    warning, unless the database already holds keys that some other vault key must have sealed."""
    if settings.vault.vault_keys is not None:
        return Vault(parse_keys(settings.vault.vault_keys.get_secret_value()))
    path = settings.vault_key_file
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("%s is readable by other users (mode %o); run: chmod 600 %s", path, mode, path)
        try:
            return Vault(parse_keys(path.read_text()))
        except ValueError as e:
            raise SettingsError(f"vault key file {path}: {e}") from None
    if await _db_holds_keys(db):
        raise SettingsError(
            f"setting VAULT_KEYS: the database holds encrypted keys but no vault key was found "
            f"(neither VAULT_KEYS nor {path}); restore your vault key backup"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(new_key_spec() + "\n")
    log.warning(
        "\n%s\nA new vault key was generated in %s.\nBACK IT UP NOW. Without it, every card key in the "
        "database is lost for good.\n%s",
        _BANNER,
        path.resolve(),
        _BANNER,
    )
    return Vault(parse_keys(path.read_text()))


def job_schedule(settings: Settings) -> Schedule:
    """What the scheduled jobs are configured with."""
    return Schedule(
        timezone=ZoneInfo(settings.shop.shop_timezone),
        summary_time=settings.scheduler.summary_time,
        payout_schedule=settings.scheduler.payout_schedule,
        outbox_retention_days=settings.scheduler.outbox_retention_days,
    )


async def open_shop(settings: Settings, *, upgrade: bool = True) -> Services:
    """A migrated database, the vault and the services. Close with ``close_shop``."""
    db = Database(settings.database.url)
    try:
        if upgrade:
            await migrate.upgrade(db)
        vault = await load_vault(settings, db)
    except BaseException:
        await db.dispose()
        raise
    return Services(Context(db=db, vault=vault, config=shop_config(settings)))


async def open_shop_when_up(settings: Settings, database: Dependency | None = None) -> Services:
    """``open_shop``, waiting out a database that is not reachable yet (retried with backoff,
    OPS_RETRY_FIRST_SECONDS up to OPS_RETRY_MAX_SECONDS; logged once when it is away, once when it is back).
    A wrong setting (a refused password, no such database, an unreadable vault key) is raised at once. For
    the long-running commands (``keyshop run``, ``keyshop scheduler``); one-off commands fail fast."""
    database = database or Dependency("database")
    backoff = Backoff(first=settings.ops.retry_first_seconds, cap=settings.ops.retry_max_seconds)
    return await retry_until_up(
        lambda: open_shop(settings), lambda e: database if is_db_outage(e) else None, backoff
    )


async def close_shop(services: Services) -> None:
    await services.ctx.db.dispose()
