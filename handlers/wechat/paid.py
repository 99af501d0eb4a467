"""What WeChat Pay tells the shop, turned into the core's payment calls — the same from a notify and from
the reconciliation's query, so a payment is confirmed once whichever arrives first:

- ``take_transaction``: a transaction WeChat Pay says is paid (``SUCCESS``) becomes a payment notice of
  provider ``wechatpay`` (charge id: WeChat Pay's transaction_id) through ``PaymentService.receive_notice``,
  which confirms it idempotently (a replay changes nothing), refunds it when it cannot be honoured (an
  amount that differs, a late payment for stock sold meanwhile) and keeps it pending when confirming fails.
- ``pay_back``: a refund the core owes (``RefundDue`` of a ``wechatpay`` charge) asked of WeChat Pay's
  refund API; ``refund_settled``: WeChat Pay's answer (from the refund notify or a query), completing it.
- ``WechatPayReconciler``: the job that asks WeChat Pay about the orders it opened, since notifies are
  not guaranteed: paid ones are taken as above, unpaid ones closed once the shop will not take them (the
  reservation over, or the order cancelled; those WeChat Pay never had, whose prepay failed, then just
  settled), and refunds still owed asked about."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from core.errors import InvalidInput, InvalidOrderState
from core.errors import OrderNotFound as ShopOrderNotFound
from core.messages import RefundDue
from core.models import Charge, OrderStatus
from core.services import Services
from core.services.notices import NoticeOutcome
from core.services.wechat_pay import CLOSED, PAID, OpenPayOrder
from handlers.wechat.pay.errors import OrderNotFound
from handlers.wechat.texts import DEFAULT_LANGUAGE

log = logging.getLogger(__name__)

PROVIDER = "wechatpay"
CURRENCY = "CNY"  # WeChat Pay's domestic API charges in fen of CNY only
CHANNEL = "wechat"
MAX_OPENID = 64  # users.external_id; WeChat's openids are 28 characters, WeChat Pay allows 128


class Transaction(Protocol):
    out_trade_no: str
    transaction_id: str | None
    trade_state: str
    total: int
    currency: str
    openid: str | None
    appid: str
    mchid: str


class Refund(Protocol):
    out_refund_no: str
    out_trade_no: str
    transaction_id: str
    status: str
    refund: int
    total: int


@dataclass(frozen=True)
class Merchant:
    """Who WeChat Pay's messages must be for: our official account and our merchant number."""

    app_id: str
    mch_id: str


def refund_number(charge_id: str) -> str:
    """The ``out_refund_no`` of the (one, full) refund of a charge: derived from the charge, so that a
    retried request is the same refund to WeChat Pay, never a second one."""
    return f"R{charge_id}"[:64]


async def take_transaction(services: Services, tx: Transaction, merchant: Merchant) -> NoticeOutcome | None:
    """A transaction WeChat Pay reported: when paid, its payment is confirmed (see the module). Returns
    the notice's outcome, or None when there is nothing to confirm (not paid, or not ours — logged)."""
    if tx.trade_state != "SUCCESS" or not tx.transaction_id:
        return None
    if (tx.appid, tx.mchid) != (merchant.app_id, merchant.mch_id):
        log.warning("wechat pay: transaction %s is for %s/%s, not us", tx.transaction_id, tx.appid, tx.mchid)
        return None
    payer = await services.users.find(CHANNEL, tx.openid) if tx.openid else None
    openid = tx.openid if tx.openid and len(tx.openid) <= MAX_OPENID else None  # one a user can hold
    if payer is None and openid and not await _ours(services, tx.out_trade_no):
        # money for no order of ours from someone the shop never saw: they become a user, so that what
        # is owed back has someone to go to (WeChat Pay refunds by the order; the openid is of our AppID).
        # An openid too long for a user: owed back by its order alone, as before
        payer = await services.users.ensure(CHANNEL, openid, language=DEFAULT_LANGUAGE)
    charge = Charge(
        PROVIDER,
        tx.transaction_id,
        tx.out_trade_no,
        tx.total,
        tx.currency,
        payer.id if payer is not None else None,  # None: the order's buyer paid (a QR scanned by a stranger)
    )
    raw: dict[str, Any] = {
        "transaction_id": tx.transaction_id,
        "out_trade_no": tx.out_trade_no,
        "total": tx.total,
        "currency": tx.currency,
        "openid": tx.openid,
    }
    outcome = await services.payments.receive_notice(charge, raw=raw)
    if outcome.result is not None:
        await services.wechat_pay.settle(tx.out_trade_no, PAID)
        if outcome.result.must_refund and not outcome.result.replay:
            log.info(
                "wechat pay: payment %s for order %s is refunded (%s)",
                tx.transaction_id,
                tx.out_trade_no,
                outcome.result.reason,
            )
    return outcome


async def _ours(services: Services, order_ref: str) -> bool:
    try:
        await services.orders.get(order_ref)
    except ShopOrderNotFound:
        return False
    return True


class RefundClient(Protocol):
    async def refund(
        self, *, out_trade_no: str, out_refund_no: str, refund: int, total: int, reason: str | None = None
    ) -> Any: ...


async def pay_back(services: Services, pay: RefundClient, m: RefundDue) -> None:
    """Ask WeChat Pay to refund a charge the core owes back, in full; complete it when WeChat Pay says it
    succeeded at once (otherwise its notify, or the reconciliation, does). WeChat Pay's errors propagate:
    the outbox sender retries them."""
    result = await pay.refund(
        out_trade_no=m.order_ref,
        out_refund_no=refund_number(m.charge_id),
        refund=m.amount,
        total=m.amount,
        reason=(m.reason or "refund")[:80],
    )
    await refund_settled(services, result)


async def refund_settled(services: Services, r: Refund, *, told: set[str] | None = None) -> None:
    """WeChat Pay's word on a refund: ``SUCCESS`` completes it (idempotent; a refund of a charge the shop
    does not have or did not owe back changes nothing and is logged, as retrying cannot change it);
    ``PROCESSING`` waits; an ``ABNORMAL`` or ``CLOSED`` refund needs an admin (the buyer's account cannot
    take the money…): logged as an error, and the payment stays owed, shown on the order's admin page,
    until WeChat Pay reports the same refund done (an ABNORMAL one once the merchant handles it in the
    merchant platform, a CLOSED one once the reconciliation has asked for it again). With ``told`` (the
    reconciliation's, asking every minute) each refund's trouble is logged as an error once, then quietly."""
    if r.status == "SUCCESS":
        try:
            result = await services.refunds.complete_refund(PROVIDER, r.transaction_id, actor=PROVIDER)
        except InvalidInput:  # no such charge here: nothing of ours to complete (WeChat Pay need not retry)
            log.warning("wechat pay: refund %s of order %s: the shop has no charge %s", *_refund_ids(r))
            return
        except InvalidOrderState:  # the shop kept this charge: someone refunded it outside the shop
            log.error(
                "wechat pay: refund %s of order %s: WeChat Pay refunded charge %s, which the shop did not"
                " owe back: refunded in the merchant platform? The order is unchanged; check it",
                *_refund_ids(r),
            )
            return
        if not result.replay:
            log.info("wechat pay: refund %s of order %s done", r.out_refund_no, r.out_trade_no)
    elif r.status in ("ABNORMAL", "CLOSED"):
        seen = f"{r.out_refund_no}:{r.status}"
        if told is not None and seen in told:
            log.info(
                "wechat pay: refund %s of order %s is still %s", r.out_refund_no, r.out_trade_no, r.status
            )
            return
        if told is not None:
            told.add(seen)
        log.error(
            "wechat pay: refund %s of order %s is %s: %s",
            r.out_refund_no,
            r.out_trade_no,
            r.status,
            HANDLE_BY_HAND[r.status],
        )


# What the merchant does about a refund WeChat Pay could not make, as the log says it.
HANDLE_BY_HAND = {
    "ABNORMAL": "the buyer's account cannot take the money: handle it in the merchant platform"
    " (发起异常退款); the order is refunded when WeChat Pay reports it done",
    "CLOSED": "it is asked for again under the same refund number; if it keeps closing, refund the buyer in"
    " the merchant platform",
}


def _over(row: OpenPayOrder, now: datetime) -> bool:
    """The shop will not take a payment for this order at WeChat Pay any more: its reservation is over,
    or it is no longer pending (cancelled, or ordered again in its stead) — a payment now would only be
    a late one, taken or given back."""
    return row.expires_at <= now or row.order_status != OrderStatus.PENDING.value


def _refund_ids(r: Refund) -> tuple[str, str, str]:
    return r.out_refund_no, r.out_trade_no, r.transaction_id


class QueryClient(RefundClient, Protocol):
    async def query(self, out_trade_no: str) -> Any: ...

    async def close(self, out_trade_no: str) -> None: ...

    async def query_refund(self, out_refund_no: str) -> Any: ...


class WechatPayReconciler:
    """The ``reconcile_wechatpay`` job: see the module."""

    def __init__(self, services: Services, pay: QueryClient, merchant: Merchant) -> None:
        self.services, self.pay, self.merchant = services, pay, merchant
        self._told: set[str] = set()  # the refunds whose trouble this process has logged as an error

    async def run(self) -> int:
        """One round; returns how many orders it settled (paid or closed)."""
        settled = 0
        now = self.services.ctx.clock.now()
        for row in await self.services.wechat_pay.due():
            try:
                settled += await self._reconcile(row, now)
            except Exception:  # one order's trouble (the database…) must not hold up the others, or refunds
                log.exception(
                    "wechat pay: reconciling order %s failed; it is asked about again", row.order_ref
                )
        await self._refunds()
        return settled

    async def _reconcile(self, row: OpenPayOrder, now: datetime) -> int:
        """Ask WeChat Pay about one open order and act on it; 1 when it is settled now, else 0."""
        try:
            tx = await self.pay.query(row.order_ref)
        except OrderNotFound:  # its prepay never reached WeChat Pay (refused, or it was away)
            if _over(row, now):  # and none will any more: nothing to pay, nothing to ask about
                return int(await self.services.wechat_pay.settle(row.order_ref, CLOSED))
            return 0
        except Exception as e:
            log.warning("wechat pay: querying order %s failed: %s", row.order_ref, type(e).__name__)
            return 0
        if tx.trade_state == "SUCCESS":
            outcome = await take_transaction(self.services, tx, self.merchant)
            return int(outcome is not None and outcome.result is not None)
        if tx.trade_state == "REFUND":
            return await self._refunded(row, tx)
        if tx.trade_state == "CLOSED":
            return int(await self.services.wechat_pay.settle(row.order_ref, CLOSED))
        if _over(row, now) and tx.trade_state in ("NOTPAY", "PAYERROR", "REVOKED"):
            try:  # nobody may pay this order at WeChat Pay any more
                await self.pay.close(row.order_ref)
            except Exception as e:
                log.warning("wechat pay: closing order %s failed: %s", row.order_ref, type(e).__name__)
                return 0
            return int(await self.services.wechat_pay.settle(row.order_ref, CLOSED))
        return 0

    async def _refunded(self, row: OpenPayOrder, tx: Any) -> int:
        """WeChat Pay took this order's money and gave some or all of it back. The shop's own charge (it
        refunded it; its row only stayed open) settles as paid. A charge the shop never saw (its notify
        lost, then refunded in the merchant platform) delivers nothing, as the money went back: the
        admins are told, and the order is no longer asked about. 1 when the order settles now."""
        if tx.transaction_id and await self.services.payments.recorded(PROVIDER, tx.transaction_id):
            return int(await self.services.wechat_pay.settle(row.order_ref, PAID))
        log.error(
            "wechat pay: order %s was paid (%s) and refunded at WeChat Pay without the shop seeing the"
            " payment: nothing was delivered; check the order in the merchant platform",
            row.order_ref,
            tx.transaction_id,
        )
        return int(await self.services.wechat_pay.settle(row.order_ref, CLOSED))

    async def _refunds(self) -> None:
        """Refunds asked of WeChat Pay whose notify never came: asked about by their number."""
        for p in await self.services.refunds.owed_by_provider(PROVIDER):
            try:
                r = await self.pay.query_refund(refund_number(p.charge_id))
            except Exception as e:  # not asked yet (the outbox will), or WeChat Pay away: next round
                log.debug("wechat pay: refund of %s not known yet: %s", p.charge_id, type(e).__name__)
                continue
            if r.status == "CLOSED":  # WeChat Pay's rule: a failed refund is asked again under its number
                r = await self._ask_again(r)
            try:
                await refund_settled(self.services, r, told=self._told)
            except Exception:  # the next round asks again
                log.exception("wechat pay: completing the refund of %s failed", p.charge_id)

    async def _ask_again(self, r: Refund) -> Refund:
        """A CLOSED refund asked for again, the same refund number and amounts; WeChat Pay's answer, or
        ``r`` as it was when WeChat Pay refused or was away (the next round asks again)."""
        try:
            again: Refund = await self.pay.refund(
                out_trade_no=r.out_trade_no, out_refund_no=r.out_refund_no, refund=r.refund, total=r.total
            )
        except Exception as e:
            log.warning(
                "wechat pay: asking again for closed refund %s failed: %s", r.out_refund_no, type(e).__name__
            )
            return r
        log.warning(
            "wechat pay: refund %s of order %s was closed: asked for again", r.out_refund_no, r.out_trade_no
        )
        return again
