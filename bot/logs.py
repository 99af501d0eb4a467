"""Logging for every command: LOG_LEVEL, LOG_FORMAT (readable lines, or one JSON object a line for log
collectors), and the libraries' routine chatter kept out of INFO.

JSON lines come from python-json-logger (a small, maintained formatter for the standard ``logging``): each
has ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message`` and, when there is one, ``exception`` (the
traceback as one string).
"""

from __future__ import annotations

import logging
import sys

from bot.settings.log import LogSettings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Routine lines at INFO that say nothing an operator acts on: APScheduler's "Adding job tentatively",
# "Added job", "Running job", "executed successfully"; aiogram's "Update id=… is handled. Duration …"
# for every update; alembic's per-migration lines. Their warnings and errors still show. --verbose
# (DEBUG) shows everything.
QUIET_LOGGERS = ("alembic", "apscheduler", "aiogram.event")


def formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
            timestamp="time",
        )
    return logging.Formatter(TEXT_FORMAT)


def configure_logging(settings: LogSettings, *, verbose: bool = False) -> None:
    """Root logging to stderr in the configured format and level (DEBUG with ``verbose``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(settings.log_format))
    logging.basicConfig(level="DEBUG" if verbose else settings.log_level, handlers=[handler])
    if not verbose:
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
