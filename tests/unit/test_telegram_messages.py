"""Every typed outbox message has one way to reach a Telegram user."""

from __future__ import annotations

from typing import Any

from core.messages import MESSAGE_TYPES, ChatReply
from core.services.outbox import OutboxMessage
from handlers.telegram.workers.messages import DELIVERERS, Outgoing, deliver


def test_every_outbox_message_type_has_a_telegram_deliverer() -> None:
    missing = sorted(kind for kind, cls in MESSAGE_TYPES.items() if cls not in DELIVERERS)
    assert missing == [], f"no Telegram deliverer for {missing}: add one to DELIVERERS"


def test_the_telegram_deliverers_know_no_type_the_core_does_not() -> None:
    assert set(DELIVERERS) <= set(MESSAGE_TYPES.values())


async def test_a_late_answer_is_sent_as_its_plain_text_never_as_markup() -> None:
    sent: list[str] = []

    class Bot:
        async def send_message(self, chat_id: int, text: str, **_: Any) -> None:
            sent.append(text)

    item = OutboxMessage(1, 7, "telegram", "501", "en", ChatReply("Tom & Jerry <3"), 0)
    out = Outgoing(Bot(), None, None, item)  # type: ignore[arg-type]
    await deliver(out)
    assert sent == ["Tom &amp; Jerry &lt;3"]  # shown by Telegram's HTML as it was written
