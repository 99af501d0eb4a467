"""Every typed outbox message has one way to reach a Telegram user."""

from __future__ import annotations

from core.messages import MESSAGE_TYPES
from handlers.telegram.workers.messages import DELIVERERS


def test_every_outbox_message_type_has_a_telegram_deliverer() -> None:
    missing = sorted(kind for kind, cls in MESSAGE_TYPES.items() if cls not in DELIVERERS)
    assert missing == [], f"no Telegram deliverer for {missing}: add one to DELIVERERS"


def test_the_telegram_deliverers_know_no_type_the_core_does_not() -> None:
    assert set(DELIVERERS) <= set(MESSAGE_TYPES.values())
