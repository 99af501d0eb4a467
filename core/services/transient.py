"""Retrying what failed on a database hiccup: SQLite's "database is locked" while a long write (an import
publishing a million keys) holds the lock, or a PostgreSQL connection dropped under us.

Only for short, idempotent steps that must not be lost because they failed once: recording a payment
notice, finding or creating the user behind an update (a payment's payer among them)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError

log = logging.getLogger(__name__)

TRANSIENT_DB_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
TRIES = 5  # a few quick tries over about a second and a half

_T = TypeVar("_T")


def is_transient(error: BaseException) -> bool:
    return isinstance(error, TRANSIENT_DB_ERRORS)


def describe(error: BaseException) -> str:
    """What went wrong, without the SQL statement and its parameters."""
    return f"{type(error).__name__}: {getattr(error, 'orig', None) or error}"[:255]


async def retry_transient(step: Callable[[], Awaitable[_T]], what: str, *, tries: int = TRIES) -> _T:
    """Run ``step`` (one whole transaction); on a transient database error run it again, up to ``tries``
    times with a short backoff, then let the error through."""
    for attempt in range(tries - 1):
        try:
            return await step()
        except TRANSIENT_DB_ERRORS as e:
            log.warning("%s: %s; retrying", what, describe(e))
            await asyncio.sleep(0.1 * 2**attempt)
    return await step()
