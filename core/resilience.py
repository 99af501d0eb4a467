"""Living through outages of what the shop depends on (the database, Telegram, Redis): retry with capped
exponential backoff, and say so once.

A ``Dependency`` remembers whether its service answered last time and logs only when that changes:
"database unreachable (OperationalError: …); retrying" once when it goes away, "database reachable again"
once when it is back, however many tries lie between (each try is a DEBUG line). Whoever notices first
reports it: a start-up step, the outbox sender's rounds, a health check, a failing job.

``retry_until_up`` runs one step again and again while its error is some dependency's outage and lets any
other error through at once: a wrong setting (a refused password, a revoked token) is not an outage and
retrying it would only hide it.

Framework-free like the rest of core: the channels and the composition root bring their own
classifications of errors (Telegram's, Redis's); the database's is here.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = logging.getLogger("keyshop.health")

_T = TypeVar("_T")

# What an error message may carry that must not reach a log line: a bot token (in a URL an HTTP client
# quotes) and a URL's password.
_TOKEN_RE = re.compile(r"\d{3,20}:[A-Za-z0-9_-]{20,}")
_URL_PASSWORD_RE = re.compile(r"(://[^:/@\s]+):[^@/\s]+@")

# PostgreSQL's answers to a connection that mean a wrong setting, not an outage: retrying cannot help.
_PG_REFUSALS = (
    "password authentication failed",
    "no pg_hba.conf entry",
    "does not exist",  # the database or the role
    "permission denied",
    "authentication failed",
)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter: ``first`` seconds, then twice as long each time up to
    ``cap``; each delay is moved at random by up to ``jitter`` of itself so that several instances
    restarted together do not knock at the same moment."""

    first: float = 1.0
    cap: float = 60.0
    factor: float = 2.0
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        """The pause after the ``attempt``-th failure in a row (0: the first)."""
        base = min(self.cap, self.first * self.factor ** min(attempt, 64))
        return max(0.0, base * random.uniform(1 - self.jitter, 1 + self.jitter))  # noqa: S311 - not a secret


def describe(error: BaseException) -> str:
    """One short line naming what went wrong, without secrets: the driver's own error when SQLAlchemy
    wraps one (never the SQL statement and its parameters), its first line, at most 160 characters."""
    inner = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    text = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    text = _URL_PASSWORD_RE.sub(r"\1:***@", _TOKEN_RE.sub("<token>", text))
    name = type(inner).__name__
    return f"{name}: {text}"[:160] if text else name


class Dependency:
    """Whether one service answered when last asked; logs each change of that, and only those."""

    def __init__(self, name: str, *, logger: logging.Logger = log) -> None:
        self.name = name
        self.up: bool | None = None  # None: not asked yet
        self.reason: str | None = None  # why it is down
        self.failures = 0  # in a row, since it was last up
        self._log = logger

    def failed(self, error: BaseException | str) -> bool:
        """It did not answer. Logs (a WARNING) only if it was up or not asked yet; returns whether it
        did."""
        reason = error if isinstance(error, str) else describe(error)
        self.failures += 1
        if self.up is False:
            self._log.debug("%s still unreachable (%s)", self.name, reason)
            return False
        self.up, self.reason = False, reason
        self._log.warning("%s unreachable (%s); retrying", self.name, reason)
        return True

    def ok(self) -> bool:
        """It answered. Logs (INFO) only if it was down; returns whether it did."""
        was_down = self.up is False
        self.up, self.reason, self.failures = True, None, 0
        if was_down:
            self._log.info("%s reachable again", self.name)
        return was_down


_SQLITE_MISTAKES = (
    "unable to open database file",
    "no such table",
    "no such column",
    "already exists",
    "syntax error",
)


def is_db_outage(error: BaseException) -> bool:
    """Whether a database error is the database being away (refused or dropped connections, a server
    shutting down, a lock held past the busy timeout) rather than a wrong setting or a bug."""
    if isinstance(error, OperationalError | InterfaceError):
        text = str(error.orig if error.orig is not None else error).lower()
        if "fatal:" in text and any(r in text for r in _PG_REFUSALS):
            return False
        # SQLite: a DATA_DIR it cannot write to is a setting to fix, not a file to wait for; so is a schema
        # that does not match the code (sqlite3 reports those as OperationalError too)
        return not any(m in text for m in _SQLITE_MISTAKES)
    return isinstance(error, ConnectionError | TimeoutError)


async def retry_until_up(
    step: Callable[[], Awaitable[_T]],
    owner: Callable[[BaseException], Dependency | None],
    backoff: Backoff,
    *,
    wait_hint: Callable[[BaseException], float | None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> _T:
    """``step()`` until it succeeds. An error ``owner`` attributes to a dependency is that dependency's
    outage: it is told (and logs the change), and the step runs again after a pause from ``backoff`` (or
    as long as ``wait_hint`` says, e.g. a 429's ``retry_after``). Any other error is raised at once. Once
    the step succeeds, every dependency that failed it is told it is back."""
    failed: list[Dependency] = []
    attempt = 0
    while True:
        try:
            result = await step()
        except Exception as e:
            dependency = owner(e)
            if dependency is None:
                raise
            dependency.failed(e)
            if dependency not in failed:
                failed.append(dependency)
            hinted = wait_hint(e) if wait_hint is not None else None
            await sleep(hinted if hinted is not None else backoff.delay(attempt))
            attempt += 1
            continue
        for dependency in failed:
            dependency.ok()
        return result
