"""WeChat's customer-service (客服) window as a pure rule: when the shop may write to a WeChat user, and
how many messages it may still send them (``../shared/WECHAT.md``, "Outbound").

A user opens the window by writing (48 hours, 5 messages since 2023), by tapping a menu button, following
or scanning a QR code (1 minute, 3 messages), or by paying with WeChat Pay (48 hours, no count). Openings
of different kinds add up; WeChat spends an uncounted opening first, then the one that ends first (the
rule its emulator, ``sandbox.wechat.limits``, plays).

The shop's ``WechatWindow`` is what it last knew (``wechat_windows``), kept so the sender does not spend
calls it knows WeChat will refuse. WeChat's own answer is the truth: a refusal (45015 window closed, 45047
quota used) closes the window here too (``closed_at``) until the user's next opening.

A WeChat Pay payment opens its payer's window in the transaction that records it: the reactions at the end
(registered in ``core.reactions``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core.events import OrderPaid, PaymentRejected, RefundOwed

if TYPE_CHECKING:
    from core.uow import UnitOfWork

CHANNEL = "wechat"  # users.channel of the official account's users (external_id: their openid)
WECHAT_PAY = "wechatpay"  # the payment provider whose payments open a window
MESSAGE, EVENT, PAYMENT = "message", "event", "payment"
OPENINGS = (MESSAGE, EVENT, PAYMENT)
MESSAGE_WINDOW = timedelta(hours=48)
MESSAGE_QUOTA = 5
EVENT_WINDOW = timedelta(minutes=1)
EVENT_QUOTA = 3
PAYMENT_WINDOW = timedelta(hours=48)


@dataclass(frozen=True, slots=True)
class Spent:
    """One message sent within the opening of ``kind`` made at ``opened_at`` (None: an uncounted one)."""

    kind: str
    opened_at: datetime


@dataclass(frozen=True, slots=True)
class WechatWindow:
    user_id: int
    message_at: datetime | None = None  # the user's last message
    message_used: int = 0  # customer-service messages sent since it
    event_at: datetime | None = None  # the last menu tap, follow or scan
    event_used: int = 0
    paid_at: datetime | None = None  # the last WeChat Pay payment
    closed_at: datetime | None = None  # WeChat refused a message since the latest opening

    def left(self, now: datetime) -> int | None:
        """How many messages may still be sent at ``now``: None for no count (after a payment), 0 when
        the window is closed or used up."""
        if self.closed_at is not None:
            return 0
        if self.paid_at is not None and now < self.paid_at + PAYMENT_WINDOW:
            return None
        return sum(left for _, _, left in self._counted(now))

    def spend(self, now: datetime) -> tuple[WechatWindow, Spent | None]:
        """The window after one more message at ``now`` (which must be allowed: ``left`` is not 0), and
        the opening it was counted against (None when uncounted)."""
        if self.left(now) is None:
            return self, None
        open_ = [(until, kind) for kind, until, left in self._counted(now) if left > 0]
        if not open_:
            raise ValueError("no message left in the window")
        _, kind = min(open_)
        if kind == MESSAGE:
            assert self.message_at is not None
            return dataclasses.replace(self, message_used=self.message_used + 1), Spent(kind, self.message_at)
        assert self.event_at is not None
        return dataclasses.replace(self, event_used=self.event_used + 1), Spent(kind, self.event_at)

    def _counted(self, now: datetime) -> list[tuple[str, datetime, int]]:
        """The counted openings still running at ``now``: (kind, until, messages left)."""
        out = []
        if self.message_at is not None and now < self.message_at + MESSAGE_WINDOW:
            out.append((MESSAGE, self.message_at + MESSAGE_WINDOW, max(0, MESSAGE_QUOTA - self.message_used)))
        if self.event_at is not None and now < self.event_at + EVENT_WINDOW:
            out.append((EVENT, self.event_at + EVENT_WINDOW, max(0, EVENT_QUOTA - self.event_used)))
        return out


# ---------------------------------------------------------------- reactions: a WeChat Pay payment opens one


def _paid(uow: UnitOfWork, actor: str, payer_id: int | None, at: datetime) -> None:
    """A payment WeChat Pay took from ``payer_id`` opens their window for 48 hours without a count
    (whatever the shop then does with it: deliver, or refund), and releases what waited for it."""
    if actor == f"payment:{WECHAT_PAY}" and payer_id is not None:
        uow.repo.wechat_windows.open(payer_id, PAYMENT, at)
        uow.repo.outbox.release_parked(payer_id, at)


def open_window_on_wechat_payment(uow: UnitOfWork, e: OrderPaid) -> None:
    _paid(uow, e.actor, e.order.user_id, e.at)  # a payment is accepted only from the order's owner


def open_window_on_rejected_wechat_payment(uow: UnitOfWork, e: PaymentRejected) -> None:
    _paid(uow, e.actor, e.charge.payer_id, e.at)


def open_window_on_wechat_payment_owed_back(uow: UnitOfWork, e: RefundOwed) -> None:
    """A payment refused as it arrived (an expired order, a limit): its payer just paid. An admin's refund
    later is no payment (its actor is the admin's) and opens nothing."""
    _paid(uow, e.actor, e.charge.payer_id, e.at)
