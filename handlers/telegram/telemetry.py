"""What the Telegram side counts for monitoring, as a port: the composition root plugs in its metrics
(``bot.metrics``), tests and tools leave the default, which counts nothing. Labels are kinds and places,
never a user, a chat or a text."""

from __future__ import annotations

from typing import Protocol


class Telemetry(Protocol):
    def delivered(self, kind: str) -> None:
        """An outbox message of ``kind`` (a message type's KIND) was accepted by Telegram."""

    def rate_limited(self, source: str) -> None:
        """Telegram answered 429 Too Many Requests to the ``source`` ("outbox", "replies")."""


class NoTelemetry:
    def delivered(self, kind: str) -> None:
        pass

    def rate_limited(self, source: str) -> None:
        pass
