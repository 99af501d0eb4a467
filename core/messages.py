"""Typed outbox messages: what the shop has to tell a user (or do for them) once a transaction committed.

The outbox stores a message's type (``KIND``) and its fields; each channel renders each type in one place
(Telegram: ``handlers.telegram.workers.messages``), and a test fails when a type has none. A message
type that is not in ``MESSAGE_TYPES`` is refused where it is written (``check_writable``), so a forgotten
registration fails the first test that writes it, not a buyer. Messages carry
references, never keys: a key is decrypted when the message is sent.

The ``KIND`` strings are stored in ``outbox.kind``: never rename one (rows already written would become
unreadable); add a new type instead.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar, Self


class UnknownMessage(ValueError):
    """An outbox row no code can read: a type nobody knows (written by a newer version) or damaged fields."""


@dataclass(frozen=True, slots=True)
class Message:
    KIND: ClassVar[str] = ""

    def fields(self) -> dict[str, Any]:
        """What the outbox stores (JSON). Fields are plain values (str, int, None), so a flat copy is
        what ``dataclasses.asdict`` would make, at a fraction of its cost on every paid order."""
        return {name: getattr(self, name) for name in _field_types(type(self))}

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Self:
        hints = _field_types(cls)
        missing = hints.keys() - fields.keys()
        if missing:
            raise UnknownMessage(f"{cls.KIND} message lacks {sorted(missing)}")
        for name, allowed in hints.items():
            value = fields[name]
            if not any(type(value) is t for t in allowed):  # exact: a bool is no int, a float no int
                raise UnknownMessage(f"{cls.KIND} message field {name} is a {type(value).__name__}")
        return cls(**{k: v for k, v in fields.items() if k in hints})


_FIELD_TYPES: dict[type, dict[str, tuple[type, ...]]] = {}


def _field_types(cls: type) -> dict[str, tuple[type, ...]]:
    """Each field's allowed types (``str | None`` -> ``(str, NoneType)``), from its annotation."""
    if cls not in _FIELD_TYPES:
        hints = typing.get_type_hints(cls)
        _FIELD_TYPES[cls] = {
            f.name: typing.get_args(hints[f.name]) or (hints[f.name],) for f in dataclasses.fields(cls)
        }
    return _FIELD_TYPES[cls]


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


@dataclass(frozen=True, slots=True)
class Broadcast(Message):
    """An admin's broadcast (``core.services.broadcasts``) to one recipient: its text is read when sent, so
    100,000 rows hold a number each, not the text."""

    KIND: ClassVar[str] = "broadcast"
    broadcast_id: int


@dataclass(frozen=True, slots=True)
class RefundMade(Message):
    """Tell whoever paid that an admin returned their money outside the chat (a refund "by hand": fiat,
    a payment marked paid): the channel moves no money, it only says so."""

    KIND: ClassVar[str] = "payment_refunded_by_hand"
    order_ref: str
    reason: str | None
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class BalanceReturned(Message):
    """Tell whoever paid from their shop balance that the payment is back in that balance (the order was
    refunded): the money moved in the ledger already, the channel only says so."""

    KIND: ClassVar[str] = "payment_returned_to_balance"
    order_ref: str
    reason: str | None
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class PayoutPaid(Message):
    """Tell a distributor that an admin paid their withdrawal request (``reference``: the admin's payment
    reference, to find the transfer)."""

    KIND: ClassVar[str] = "payout_paid"
    payout_id: int
    amount: int
    currency: str  # of ``amount``: the ledger currency withdrawn
    payout_amount: int
    payout_currency: str
    reference: str


@dataclass(frozen=True, slots=True)
class PayoutRejected(Message):
    """Tell a distributor that an admin rejected their withdrawal request, and why: the money is back in
    their available balance."""

    KIND: ClassVar[str] = "payout_rejected"
    payout_id: int
    amount: int
    currency: str
    reason: str


@dataclass(frozen=True, slots=True)
class MembershipReminder(Message):
    """Remind a buyer that the membership of their delivered order ends soon (``stage`` ``d3``: three days
    before, ``d1``...) or has ended (``expired``), with a way to renew it. The end date, the product and
    whether the buyer renewed meanwhile are read when it is sent."""

    KIND: ClassVar[str] = "membership_reminder"
    order_ref: str
    stage: str


@dataclass(frozen=True, slots=True)
class InvoiceReminder(Message):
    """Remind a buyer that the reservation of their unpaid order runs out soon (not sent if the order was
    paid, cancelled or expired by then)."""

    KIND: ClassVar[str] = "invoice_reminder"
    order_ref: str


@dataclass(frozen=True, slots=True)
class PayoutReady(Message):
    """Tell a distributor that their available commission in ``currency`` can be withdrawn (the payout run,
    ``core.services.payout_run``): ``amount`` pays ``payout_amount`` of ``payout_currency``. The channel
    offers the way to ask for it (/withdraw)."""

    KIND: ClassVar[str] = "payout_ready"
    currency: str
    amount: int
    payout_amount: int
    payout_currency: str


@dataclass(frozen=True, slots=True)
class PayoutQueueDue(Message):
    """Tell an admin with ``Power.MONEY`` that withdrawal requests wait (the payout run of ``slot``). The
    queue is read when the message is sent: the admin sees it as it is then, not as it was."""

    KIND: ClassVar[str] = "payout_queue"
    slot: str


STOCK_LOW = "low"  # at or under the product's low-stock threshold, some left
STOCK_OUT = "out"  # none left
STOCK_LEVELS = (STOCK_LOW, STOCK_OUT)


@dataclass(frozen=True, slots=True)
class StockAlert(Message):
    """Tell an admin with ``Power.STOCK`` that a product's stock crossed its low-stock threshold (``low``)
    or ran out (``out``): ``available`` keys were left then, against ``threshold``. The product's name is
    read when the message is sent."""

    KIND: ClassVar[str] = "stock_alert"
    product_id: int
    level: str
    available: int
    threshold: int

    def __post_init__(self) -> None:
        if self.level not in STOCK_LEVELS:
            raise ValueError(f"a stock alert's level is one of {STOCK_LEVELS}, not {self.level!r}")


@dataclass(frozen=True, slots=True)
class DailySummary(Message):
    """Give an owner (or an admin with ``Power.REPORTS``) the summary of the shop's day ``day``
    (``YYYY-MM-DD`` in ``SHOP_TIMEZONE``), with its chart. The figures are read when it is sent (those of a
    past day do not change; the "now" ones are then current)."""

    KIND: ClassVar[str] = "daily_summary"
    day: str

    def __post_init__(self) -> None:
        date.fromisoformat(self.day)  # a ValueError for anything but a date


CHAT_REPLY_MAX = 4096  # characters: an answer is one chat message (WeChat's are ≤ 2048 bytes)


@dataclass(frozen=True, slots=True)
class ChatReply(Message):
    """The shop's answer to something the user just wrote or tapped, already in their language, that could
    not go back as the answer itself: WeChat stopped waiting for the passive reply (5 s) before it was
    ready. Sent as an ordinary message instead. It carries the answer's text, which never holds a key
    (keys reach a buyer only through ``KeysDelivered``)."""

    KIND: ClassVar[str] = "chat_reply"
    text: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", str(self.text)[:CHAT_REPLY_MAX])


def _registry(*types: type[Message]) -> dict[str, type[Message]]:
    kinds = [cls.KIND for cls in types]
    if "" in kinds or len(set(kinds)) != len(kinds):
        raise TypeError(f"every message type needs its own KIND: {kinds}")
    return {cls.KIND: cls for cls in types}


# Every message type the outbox can carry. A new type is added here (and gets a deliverer per channel).
MESSAGE_TYPES: dict[str, type[Message]] = _registry(
    KeysDelivered,
    AwaitingManual,
    RefundDue,
    RefundMade,
    Broadcast,
    BalanceReturned,
    PayoutPaid,
    PayoutRejected,
    MembershipReminder,
    InvoiceReminder,
    PayoutReady,
    PayoutQueueDue,
    StockAlert,
    DailySummary,
    ChatReply,
)


def decode(kind: str, fields: dict[str, Any]) -> Message:
    cls = MESSAGE_TYPES.get(kind)
    if cls is None:
        raise UnknownMessage(f"unknown outbox message type {kind!r}")
    if not isinstance(fields, dict):
        raise UnknownMessage(f"{kind} message fields are not an object")
    try:
        return cls.from_fields(fields)
    except UnknownMessage:
        raise
    except Exception as e:  # whatever a damaged value makes a constructor raise (TypeError, OverflowError…)
        raise UnknownMessage(f"{kind} message fields are malformed: {type(e).__name__}: {e}") from e


def check_writable(message: Message) -> dict[str, Any]:
    """Refuse a message the outbox could not read back: a type missing from ``MESSAGE_TYPES``, or fields
    that do not rebuild the same message. Returns the fields to store."""
    if MESSAGE_TYPES.get(message.KIND) is not type(message):
        name = type(message).__name__
        raise UnknownMessage(f"{name} is not in MESSAGE_TYPES: the outbox could not read it back")
    fields = message.fields()
    if decode(message.KIND, fields) != message:
        raise UnknownMessage(f"{type(message).__name__} does not read back as itself from its fields")
    return fields
