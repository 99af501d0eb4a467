"""Typed outbox messages: what the shop has to tell a user (or do for them) once a transaction committed.

The outbox stores a message's type (``KIND``) and its fields; each channel renders each type in one place
(Telegram: ``handlers.telegram.ui.messages``), and a test fails when a type has no renderer. Messages carry
references, never keys: a key is decrypted when the message is sent.

The ``KIND`` strings are stored in ``outbox.kind``: never rename one (rows already written would become
unreadable); add a new type instead.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Self


class UnknownMessage(ValueError):
    """An outbox row no code can read: a type nobody knows (written by a newer version) or damaged fields."""


@dataclass(frozen=True, slots=True)
class Message:
    KIND: ClassVar[str] = ""

    def fields(self) -> dict[str, Any]:
        """What the outbox stores (JSON)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}
        missing = names - fields.keys()
        if missing:
            raise UnknownMessage(f"{cls.KIND} message lacks {sorted(missing)}")
        return cls(**{k: v for k, v in fields.items() if k in names})


@dataclass(frozen=True, slots=True)
class KeysDelivered(Message):
    """Show the buyer the keys of their delivered order."""

    KIND: ClassVar[str] = "order_delivered"
    order_ref: str


@dataclass(frozen=True, slots=True)
class AwaitingManual(Message):
    """Tell the buyer that their paid order waits for an admin (manual delivery), and the admins that it
    is paid."""

    KIND: ClassVar[str] = "order_awaiting_manual"
    order_ref: str


@dataclass(frozen=True, slots=True)
class RefundDue(Message):
    """Pay a charge back to whoever paid it (the message is addressed to the payer), then tell them why.
    Where the channel cannot pay back (fiat), the admins get the details to do it by hand."""

    KIND: ClassVar[str] = "payment_refund"
    provider: str
    charge_id: str
    order_ref: str
    reason: str | None
    amount: int
    currency: str

    def __post_init__(self) -> None:
        # What the outbox keeps is bounded whatever a payment provider sent.
        object.__setattr__(self, "order_ref", str(self.order_ref)[:128])
        object.__setattr__(self, "currency", str(self.currency)[:8])
        object.__setattr__(self, "amount", int(self.amount))


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.KIND: cls for cls in (KeysDelivered, AwaitingManual, RefundDue)
}


def decode(kind: str, fields: dict[str, Any]) -> Message:
    cls = MESSAGE_TYPES.get(kind)
    if cls is None:
        raise UnknownMessage(f"unknown outbox message type {kind!r}")
    if not isinstance(fields, dict):
        raise UnknownMessage(f"{kind} message fields are not an object")
    try:
        return cls.from_fields(fields)
    except (TypeError, ValueError) as e:
        raise UnknownMessage(f"{kind} message fields are malformed: {e}") from e
