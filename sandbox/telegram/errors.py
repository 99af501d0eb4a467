"""The Bot API's error shape: an HTTP-like code, Telegram's own description, and ``retry_after`` for 429."""

from __future__ import annotations

# How the Bot API words an unknown, already answered or expired query id, callback or pre-checkout alike.
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after


def bad(description: str) -> ApiError:
    """400, worded as the Bot API words it (``Bad Request: ...``)."""
    return ApiError(400, f"Bad Request: {description}")


def forbidden(description: str) -> ApiError:
    return ApiError(403, f"Forbidden: {description}")


def conflict(description: str) -> ApiError:
    return ApiError(409, f"Conflict: {description}")
