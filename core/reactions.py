"""What the shop does when something happens: the one registry of domain-event handlers.

Each reaction is a function ``def f(uow, event)`` that runs inside the transaction that emitted the
event, before COMMIT (see ``core.events``). To react to an event — a commission when an order is
delivered, a clawback when it is refunded — write the function in the module of its concern and add one
``register`` line below. A reaction that raises rolls the whole transaction back.
"""

from __future__ import annotations

from datetime import datetime

from core.balance import BALANCE, return_payment
from core.events import (
    EventHandlers,
    OrderDelivered,
    OrderPaid,
    OrderRefundRequested,
    PaymentRejected,
    RefundOwed,
)
from core.ledger import CommissionRules
from core.messages import (
    AwaitingManual,
    BalanceReturned,
    KeysDelivered,
    Message,
    RefundDue,
    check_writable,
)
from core.models import Charge, OrderStatus
from core.uow import UnitOfWork
from core.windows import (
    open_window_on_rejected_wechat_payment,
    open_window_on_wechat_payment,
    open_window_on_wechat_payment_owed_back,
)


def write_message(uow: UnitOfWork, user_id: int, message: Message, at: datetime) -> None:
    """Queue ``message`` for ``user_id`` in the outbox, in this transaction (refused, rolling it back, if
    the outbox could not read the message back)."""
    uow.repo.outbox.add(user_id, message.KIND, check_writable(message), at)


def tell_buyer_keys_are_ready(uow: UnitOfWork, e: OrderDelivered) -> None:
    write_message(uow, e.order.user_id, KeysDelivered(e.order.ref), e.at)


def tell_buyer_an_admin_will_deliver(uow: UnitOfWork, e: OrderPaid) -> None:
    if e.order.status is OrderStatus.PAID:  # paid, not delivered: it waits for an admin
        write_message(uow, e.order.user_id, AwaitingManual(e.order.ref), e.at)


def _pay_back(uow: UnitOfWork, charge: Charge, reason: str | None, at: datetime) -> None:
    """The message that pays a charge back. It is addressed to the payer: the channel refunds the payer's
    own charge (Telegram refuses a refund to anyone else) and tells them why. A charge whose payer is
    unknown cannot be paid back by the channel (it stays recorded for the admins). A payment from the shop
    balance is no channel's to pay back: it returns to the balance (``return_to_balance``)."""
    if charge.payer_id is None or charge.provider == BALANCE:
        return
    message = RefundDue(
        provider=charge.provider,
        charge_id=charge.charge_id,
        order_ref=charge.order_ref,
        reason=reason,
        amount=charge.amount,
        currency=charge.currency,
    )
    write_message(uow, charge.payer_id, message, at)


def pay_back_a_rejected_charge(uow: UnitOfWork, e: PaymentRejected) -> None:
    _pay_back(uow, e.charge, e.reason, e.at)


def pay_back_an_owed_charge(uow: UnitOfWork, e: RefundOwed) -> None:
    _pay_back(uow, e.charge, e.reason, e.at)


def return_to_balance(uow: UnitOfWork, e: RefundOwed) -> None:
    """A payment from the shop balance owed back returns to that balance at once, and its payer is told."""
    pay = return_payment(uow, e)
    if pay is not None and pay.payer_id is not None:
        told = BalanceReturned(
            order_ref=pay.order_ref, reason=e.reason, amount=pay.amount, currency=pay.currency
        )
        write_message(uow, pay.payer_id, told, e.at)


def shop_reactions(commissions: CommissionRules | None = None) -> EventHandlers:
    """The reactions every shop has, commissions by ``commissions`` (the defaults if not given). The
    composition root may register more on the returned registry."""
    rules = commissions if commissions is not None else CommissionRules()
    h = EventHandlers()
    h.register(OrderDelivered, tell_buyer_keys_are_ready)
    h.register(OrderPaid, tell_buyer_an_admin_will_deliver)
    h.register(PaymentRejected, pay_back_a_rejected_charge)
    h.register(RefundOwed, pay_back_an_owed_charge)
    h.register(RefundOwed, return_to_balance)
    h.register(OrderDelivered, rules.post_commissions)
    h.register(OrderRefundRequested, rules.take_back_commissions)
    # WeChat Pay payments open the payer's customer-service window (48 h, no count): keys can go out
    h.register(OrderPaid, open_window_on_wechat_payment)
    h.register(PaymentRejected, open_window_on_rejected_wechat_payment)
    h.register(RefundOwed, open_window_on_wechat_payment_owed_back)
    return h
