"""Domain events, and the registry of what the shop does when one happens.

A service *emits* an event into its unit of work (``uow.emit(OrderDelivered(...))``) the moment something
happened; the unit of work runs every handler registered for that event type **inside the same
transaction, just before COMMIT** (``core.uow``). A handler writes through the repositories it is given and
may emit further events; if it raises, nothing of the transaction is kept: no payment, no delivery, no
message. So a reaction to "order delivered" (a message to the buyer today, a commission tomorrow) is one
function registered in ``core.reactions``; the payment code does not change.

Events carry domain objects as they are after the change, never keys or other secrets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from core.models import Charge, Order, Product

if TYPE_CHECKING:
    from core.uow import UnitOfWork


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    at: datetime  # when it happened (the transaction's clock)
    actor: str  # who made it happen: "payment:telegram", "admin:42", "system", …


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPaid(Event):
    """Money for the order was accepted. ``order`` is as it is now: ``paid`` when it waits for an admin
    (manual delivery), ``delivered`` when its keys were handed over in the same transaction."""

    order: Order
    product: Product


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderDelivered(Event):
    """The buyer now has the order's keys (from stock, the shared key, or an admin's manual delivery)."""

    order: Order
    product: Product
    key_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRefundRequested(Event):
    """A paid or delivered order is being refunded: its keys were taken back (``voided`` or restocked)
    and each of its accepted charges is owed back (one ``RefundOwed`` each)."""

    order: Order
    product: Product
    reason: str
    voided: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRefunded(Event):
    """Every charge of the order was paid back."""

    order: Order


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentRejected(Event):
    """A charge that pays for nothing the shop sells (unknown order, someone else's order, wrong amount):
    recorded, nothing delivered; the money is owed back to ``charge.payer_id``."""

    charge: Charge
    order: Order | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundOwed(Event):
    """A charge the shop must give back to whoever paid it (``charge.payer_id``): refused by the purchase
    rules, a second charge for a paid order, an admin's refund, or a charge that could not be confirmed."""

    charge: Charge
    reason: str | None


E = TypeVar("E", bound=Event)
Handler = Callable[["UnitOfWork", Any], None]


class EventHandlers:
    """Which functions run, in registration order, when an event of a type is emitted."""

    def __init__(self) -> None:
        self._by_type: dict[type[Event], list[Handler]] = defaultdict(list)

    def register(self, event_type: type[E], handler: Callable[[UnitOfWork, E], None]) -> None:
        if handler not in self._by_type[event_type]:
            self._by_type[event_type].append(handler)

    def on(self, event_type: type[E]) -> Callable[[Callable[[UnitOfWork, E], None]], Any]:
        """Decorator form of ``register``."""

        def add(handler: Callable[[UnitOfWork, E], None]) -> Any:
            self.register(event_type, handler)
            return handler

        return add

    def for_event(self, event: Event) -> list[Handler]:
        return list(self._by_type.get(type(event), ()))

    def copy(self) -> EventHandlers:
        other = EventHandlers()
        for typ, handlers in self._by_type.items():
            other._by_type[typ] = list(handlers)
        return other
