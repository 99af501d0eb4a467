"""What the Telegram side depends on (the database, Telegram, Redis), each a ``core.resilience.Dependency``
that logs only when it goes away and when it is back, and how to tell an outage from a wrong setting.

An outage: the database refusing or dropping connections; Telegram unreachable, answering 5xx, or asking
us to slow down (429); Redis refusing connections or timing out. Not one: 401 Unauthorized (a wrong or
revoked BOT_TOKEN), a refused database password, a bug. Outages are waited out; the rest is raised.

Libraries log an outage on every retry (aiogram's polling: two lines a try; APScheduler: a traceback a
run). ``OutageLogFilter`` turns those lines into the dependency's own: one when it goes, one when it is
back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError

from core.resilience import Dependency, is_db_outage

# The libraries whose per-retry lines the filter takes over: aiogram's polling loop, APScheduler's runs.
NOISY_ON_OUTAGE = ("aiogram.dispatcher", "apscheduler.executors.default")

_POLL_FAILED = "Failed to fetch updates"  # aiogram: "Failed to fetch updates - %s: %s" (type, error)
_POLL_SLEEP = "Sleep for "  # aiogram: "Sleep for %f seconds and try again... (tryings = %d, bot id = %d)"
_POLL_BACK = "Connection established"  # aiogram: "Connection established (tryings = %d, bot id = %d)"


def is_telegram_outage(error: BaseException) -> bool:
    """Telegram (or the Bot API server in between) is away or overloaded: worth waiting for."""
    return isinstance(error, TelegramNetworkError | TelegramServerError | TelegramRetryAfter)


def telegram_wait(error: BaseException) -> float | None:
    """How long Telegram asked us to wait (429's ``retry_after``), if it did."""
    return float(error.retry_after) if isinstance(error, TelegramRetryAfter) else None


def is_redis_outage(error: BaseException) -> bool:
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # the [redis] extra is not installed: no Redis to be away
        return False
    return isinstance(error, RedisConnectionError | RedisTimeoutError)


@dataclass
class Health:
    """The dependencies of one storefront, shared by whoever notices a change first."""

    database: Dependency = field(default_factory=lambda: Dependency("database"))
    telegram: Dependency = field(default_factory=lambda: Dependency("Telegram"))
    redis: Dependency = field(default_factory=lambda: Dependency("Redis"))

    def owner(self, error: BaseException) -> Dependency | None:
        """The dependency whose outage ``error`` is, or None (a wrong setting, a bug)."""
        if is_telegram_outage(error):
            return self.telegram
        if is_redis_outage(error):
            return self.redis
        if is_db_outage(error):
            return self.database
        return None

    def dependencies(self) -> tuple[Dependency, ...]:
        return (self.database, self.telegram, self.redis)


class OutageLogFilter(logging.Filter):
    """On the loggers of ``NOISY_ON_OUTAGE``: a record reporting an outage (an exception one of ``health``'s
    dependencies owns, or aiogram's polling lines) goes to that dependency instead, which logs only the
    change; every other record passes unchanged."""

    def __init__(self, health: Health) -> None:
        super().__init__()
        self.health = health

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg if isinstance(record.msg, str) else ""
        if msg.startswith(_POLL_FAILED) and isinstance(record.args, tuple) and len(record.args) == 2:
            error = record.args[1]
            if isinstance(error, BaseException) and is_telegram_outage(error):
                self.health.telegram.failed(error)
                return False
            return True  # e.g. 409 Conflict: another instance polls; that deserves every line
        if msg.startswith(_POLL_SLEEP):
            return False  # the backoff of a failure reported above
        if msg.startswith(_POLL_BACK):
            self.health.telegram.ok()
            return False
        if record.exc_info and record.exc_info[1] is not None:
            owner = self.health.owner(record.exc_info[1])
            if owner is not None:
                owner.failed(record.exc_info[1])
                return False
        return True

    def install(self) -> None:
        for name in NOISY_ON_OUTAGE:
            logging.getLogger(name).addFilter(self)

    def uninstall(self) -> None:
        for name in NOISY_ON_OUTAGE:
            logging.getLogger(name).removeFilter(self)
