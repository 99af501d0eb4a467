"""Withdrawals: a distributor asks for their available commission to be paid out; an admin approves the
request and, once they paid it outside the chat, marks it paid with their payment's reference, or rejects
it with a reason. Each public method is one transaction.

Money (``core.ledger.post``, one posting per step, keyed by the request, so nothing moves twice):

- request: the **whole** available balance of one currency, ``available`` -> ``withdrawing``;
- reject (a requested or an approved request): ``withdrawing`` -> ``available``;
- paid (an approved request): ``withdrawing`` -> ``paid_out``.

Approving moves no money: it was set aside when the distributor asked; approval only says an admin took
it on (the queue shows it, and only an approved request can be marked paid).

A refund after settlement claws commission back from ``available`` (``core.ledger``), which may then go
below zero while a request still holds money in ``withdrawing``: that request would pay out commission the
shop took back. Such a request is not approved (``PayoutUncovered``); rejecting it returns its money to
``available``, netting the clawback, and the distributor may ask again for what is left. One already
approved may have been paid outside the chat, so marking it paid is never refused; the queue shows the
admins what the distributor owes.

A request is allowed when the balance pays at least ``PAYOUT_MINIMUM`` in the shop currency
(``core.models.payout_value``: the shop currency as it is, Stars at ``STARS_PAYOUT_RATE``; a currency with
no value is spent, never withdrawn) and no other request of the user in that currency is open. The balance
is read under ``LedgerRepo.locked_balance``: two requests at once (or a request and a payment with the
balance) take turns, and the second sees what the first left. A request key (UNIQUE) makes a replayed
request return the first; status-guarded UPDATEs make two admins' decisions one.

The payout details (where the distributor wants the money) are personal data: cleaned, length-limited,
shown to admins with ``Power.MONEY`` and never logged or written to the audit trail."""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from core.context import Context, ShopConfig, UnitOfWork
from core.errors import (
    InvalidInput,
    PayoutAlreadyDecided,
    PayoutAlreadyOpen,
    PayoutBelowMinimum,
    PayoutNotFound,
    PayoutNotWithdrawable,
    PayoutTextInvalid,
    PayoutUncovered,
)
from core.ledger import Leg, post
from core.messages import PayoutPaid, PayoutRejected
from core.models import AccountKind, Payout, PayoutStatus, payout_value
from core.reactions import write_message
from core.repositories.payouts import PayoutLine
from core.vault import fold_key

log = logging.getLogger(__name__)

MAX_DETAILS = 200  # payout_requests.details
MAX_REFERENCE = 128  # payout_requests.reference
MAX_REASON = 200  # payout_requests.reason
MAX_KEY = 64  # payout_requests.request_key
MAX_PAGE_SIZE = 50
RECENT = 5


def typed_text(text: str, limit: int) -> str:
    """Text a person typed, as it is stored and shown: control, format and bidirectional characters
    removed (they could make what an admin reads differ from what was typed), and so are the invisible
    characters a card key loses (``core.vault.INVISIBLE_RANGES``: Hangul fillers, variation selectors...,
    letters and marks to Unicode but blank to the eye); NFC, whitespace runs folded to one space. Refused
    (``PayoutTextInvalid``) when nothing is left or more than ``limit`` characters are."""
    folded = fold_key("".join(ch for ch in unicodedata.normalize("NFC", text) if _shown(ch)))
    if not 1 <= len(folded) <= limit:
        raise PayoutTextInvalid(f"type 1 to {limit} characters", max=limit)
    return folded


def _shown(ch: str) -> bool:
    # Other (C*): controls, format characters (zero-width, bidi), surrogates, private use, unassigned.
    # Whitespace is kept here and folded after.
    return ch.isspace() or unicodedata.category(ch)[0] != "C"


class Blocked(StrEnum):
    """Why a balance cannot be withdrawn now."""

    OPEN = "open"  # a request in this currency is waiting for an admin
    NOT_WITHDRAWABLE = "not_withdrawable"  # spent in the shop, never withdrawn (Stars without a rate)
    BELOW_MINIMUM = "below_minimum"  # pays less than PAYOUT_MINIMUM (or nothing: zero or negative)


@dataclass(frozen=True, slots=True)
class WithdrawOption:
    """One currency of a distributor's available balance, and whether withdrawing it is possible now."""

    currency: str
    available: int
    payout_amount: int | None  # what withdrawing all of it pays, in the shop currency; None: nothing
    blocked: Blocked | None
    open: Payout | None  # the request waiting in this currency


@dataclass(frozen=True, slots=True)
class WithdrawOverview:
    options: list[WithdrawOption]
    minimum: int  # PAYOUT_MINIMUM
    payout_currency: str  # the shop currency
    recent: list[Payout]  # the user's last requests, newest first

    def option(self, currency: str) -> WithdrawOption | None:
        return next((o for o in self.options if o.currency == currency), None)


@dataclass(frozen=True, slots=True)
class Requested:
    payout: Payout
    replay: bool  # the request key was used before: this is the request it made


@dataclass(frozen=True, slots=True)
class PayoutQueue:
    lines: list[PayoutLine]  # open requests, oldest first
    page: int
    page_size: int
    total: int  # open requests in all

    @property
    def has_more(self) -> bool:
        return (self.page + 1) * self.page_size < self.total


class PayoutService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def overview(self, user_id: int) -> WithdrawOverview:
        """The user's available balance per currency, what withdrawing each would pay or why it cannot
        be withdrawn now, and their last requests."""
        return await self.ctx.read(_overview, user_id, self.ctx.config)

    async def request(self, user_id: int, currency: str, details: str, *, key: str) -> Requested:
        """Withdraw the user's whole available balance of ``currency`` to ``details``. Refused with
        ``PayoutAlreadyOpen``, ``PayoutNotWithdrawable`` or ``PayoutBelowMinimum``; ``details`` with
        ``PayoutTextInvalid``. ``key`` identifies this request (a double tap, a replay): the same key returns
        the request it made, moving nothing more."""
        if not 1 <= len(key) <= MAX_KEY or not 1 <= len(currency) <= 8:
            raise InvalidInput("a request key of 1 to 64 characters", field="key")
        cleaned = typed_text(details, MAX_DETAILS)
        now = self.ctx.clock.now()
        done = await self.ctx.write(_request, user_id, currency, cleaned, key, self.ctx.config, now)
        if not done.replay:
            p = done.payout
            log.info("payout %s requested by user %s: %s %s", p.id, user_id, p.amount, p.currency)
        return done

    async def approve(self, payout_id: int, *, actor: str) -> Payout:
        """An admin takes a requested withdrawal on (no money moves). ``PayoutAlreadyDecided`` when it is
        no longer requested; ``PayoutUncovered`` when a refund took commission back from the distributor
        since they asked (their available balance in its currency is below zero): paying it would pay out
        commission the shop took back, and rejecting it nets that."""
        return await self.ctx.write(_approve, payout_id, actor[:64], self.ctx.clock.now())

    async def mark_paid(self, payout_id: int, reference: str, *, actor: str) -> Payout:
        """An admin paid an approved withdrawal outside the chat: its money becomes paid out and the
        distributor is told, with ``reference``. ``PayoutAlreadyDecided`` when it is not approved (now)."""
        ref = typed_text(reference, MAX_REFERENCE)
        return await self.ctx.write(_mark_paid, payout_id, ref, actor[:64], self.ctx.clock.now())

    async def reject(self, payout_id: int, reason: str, *, actor: str) -> Payout:
        """An admin refuses a requested or approved withdrawal: its money goes back to the distributor's
        available balance and they are told why. ``PayoutAlreadyDecided`` when it is paid or rejected."""
        why = typed_text(reason, MAX_REASON)
        return await self.ctx.write(_reject, payout_id, why, actor[:64], self.ctx.clock.now())

    async def queue(self, page: int = 0, page_size: int = 5) -> PayoutQueue:
        """A page of the open requests (requested and approved), oldest first."""
        if not 1 <= page_size <= MAX_PAGE_SIZE or page < 0:
            raise InvalidInput(f"from 1 to {MAX_PAGE_SIZE} requests at a time", field="page_size")
        return await self.ctx.read(_queue, page, page_size)

    async def line(self, payout_id: int) -> PayoutLine:
        """One request, in any state, with who asked."""
        found = await self.ctx.read(lambda uow: uow.repo.payouts.line(payout_id))
        if found is None:
            raise PayoutNotFound(payout_id=payout_id)
        return found

    async def mine(self, user_id: int, limit: int = RECENT) -> list[Payout]:
        """The user's requests, newest first."""
        return await self.ctx.read(lambda uow: uow.repo.payouts.of_user(user_id, min(limit, MAX_PAGE_SIZE)))


# ---------------------------------------------------------------- transactions (on the database thread)


def _value(amount: int, currency: str, cfg: ShopConfig) -> int | None:
    return payout_value(amount, currency, cfg.currency, cfg.stars_payout_rate)


def _blocked(available: int, value: int | None, opened: Payout | None, cfg: ShopConfig) -> Blocked | None:
    if opened is not None:
        return Blocked.OPEN
    if value is None:
        return Blocked.NOT_WITHDRAWABLE
    if available <= 0 or value < cfg.payout_minimum:
        return Blocked.BELOW_MINIMUM
    return None


def withdraw_block(available: int, currency: str, opened: Payout | None, cfg: ShopConfig) -> Blocked | None:
    """Why ``available`` of ``currency`` cannot be withdrawn now (``opened``: the user's open request in
    it), or None when it can: the rule ``request`` applies, for the screens and the payout run."""
    return _blocked(available, _value(available, currency, cfg), opened, cfg)


def _overview(uow: UnitOfWork, user_id: int, cfg: ShopConfig) -> WithdrawOverview:
    r = uow.repo
    available = {
        b.currency: b.amount for b in r.ledger.balances([user_id]) if b.kind is AccountKind.AVAILABLE
    }
    recent = r.payouts.of_user(user_id, RECENT)
    opened = {p.currency: p for p in recent if p.open}
    for currency in available.keys() - opened.keys():
        found = r.payouts.open_for(user_id, currency)  # older than the recent ones (several currencies)
        if found is not None:
            opened[currency] = found
    options = []
    for currency in sorted(available.keys() | opened.keys(), key=lambda c: (c != cfg.currency, c)):
        amount = available.get(currency, 0)
        value = _value(amount, currency, cfg)
        blocked = _blocked(amount, value, opened.get(currency), cfg)
        shown = value if value is not None and amount > 0 else None
        options.append(WithdrawOption(currency, amount, shown, blocked, opened.get(currency)))
    return WithdrawOverview(options, cfg.payout_minimum, cfg.currency, recent)


def _request(
    uow: UnitOfWork, user_id: int, currency: str, details: str, key: str, cfg: ShopConfig, now: datetime
) -> Requested:
    r = uow.repo
    # The lock first: every check below holds until COMMIT (a twin request waits here, then sees ours).
    amount = r.ledger.locked_balance(user_id, AccountKind.AVAILABLE, currency, now)
    before = r.payouts.by_key(key)
    if before is not None:
        if before.user_id != user_id:
            raise InvalidInput("a request key of another user", field="key")
        return Requested(before, replay=True)
    if r.payouts.open_for(user_id, currency) is not None:
        raise PayoutAlreadyOpen(currency=currency)
    value = _value(amount, currency, cfg)
    if value is None:
        raise PayoutNotWithdrawable(currency=currency)
    if amount <= 0 or value < cfg.payout_minimum:
        raise PayoutBelowMinimum(currency=currency)
    payout_id = r.payouts.insert(
        user_id=user_id,
        currency=currency,
        amount=amount,
        payout_amount=value,
        payout_currency=cfg.currency,
        details=details,
        status=PayoutStatus.REQUESTED.value,
        request_key=key,
        created_at=now,
    )
    if payout_id is None:  # only without the lock's discipline (a writer that skipped it): refuse
        raise PayoutAlreadyOpen(currency=currency)
    actor = f"user:{user_id}"
    legs: list[Leg] = [
        (user_id, AccountKind.AVAILABLE, -amount, currency),
        (user_id, AccountKind.WITHDRAWING, amount, currency),
    ]
    post(uow, f"payout:{payout_id}:requested", "payout_requested", legs, now, actor=actor)
    made = r.payouts.get(payout_id)
    assert made is not None
    r.audit.add(now, actor, "payout_requested", **_money(made))
    uow.commit()
    return Requested(made, replay=False)


def _decided(uow: UnitOfWork, payout_id: int, moved: Payout | None) -> Payout:
    """The request a status-guarded UPDATE moved, or why it did not: gone, or decided first."""
    if moved is not None:
        return moved
    if uow.repo.payouts.get(payout_id) is None:
        raise PayoutNotFound(payout_id=payout_id)
    raise PayoutAlreadyDecided(payout_id=payout_id)


def _money(p: Payout) -> dict[str, Any]:
    """What the audit trail keeps of a request: its money and whose (never its details: personal data)."""
    return {
        "payout": p.id,
        "user_id": p.user_id,
        "amount": p.amount,
        "currency": p.currency,
        "payout_amount": p.payout_amount,
        "payout_currency": p.payout_currency,
    }


def _approve(uow: UnitOfWork, payout_id: int, actor: str, now: datetime) -> Payout:
    r = uow.repo
    moved = r.payouts.move(
        payout_id, [PayoutStatus.REQUESTED], PayoutStatus.APPROVED, decided_by=actor, decided_at=now
    )
    p = _decided(uow, payout_id, moved)
    # After the request's row (the order a rejection takes them in), the lock a clawback's posting waits
    # on: a refund taking commission back now comes after this approval, which the queue then shows.
    available = r.ledger.locked_balance(p.user_id, AccountKind.AVAILABLE, p.currency, now)
    if available < 0:  # raising rolls the approval back
        raise PayoutUncovered(payout_id=p.id, owed=-available, currency=p.currency)
    r.audit.add(now, actor, "payout_approved", **_money(p))
    uow.commit()
    return p


def _mark_paid(uow: UnitOfWork, payout_id: int, reference: str, actor: str, now: datetime) -> Payout:
    moved = uow.repo.payouts.move(
        payout_id, [PayoutStatus.APPROVED], PayoutStatus.PAID, reference=reference, paid_by=actor, paid_at=now
    )
    p = _decided(uow, payout_id, moved)
    legs: list[Leg] = [
        (p.user_id, AccountKind.WITHDRAWING, -p.amount, p.currency),
        (p.user_id, AccountKind.PAID_OUT, p.amount, p.currency),
    ]
    post(uow, f"payout:{p.id}:paid", "payout_paid", legs, now, actor=actor)
    uow.repo.audit.add(now, actor, "payout_paid", reference=reference, **_money(p))
    told = PayoutPaid(
        payout_id=p.id,
        amount=p.amount,
        currency=p.currency,
        payout_amount=p.payout_amount,
        payout_currency=p.payout_currency,
        reference=reference,
    )
    write_message(uow, p.user_id, told, now)
    uow.commit()
    return p


def _reject(uow: UnitOfWork, payout_id: int, reason: str, actor: str, now: datetime) -> Payout:
    moved = uow.repo.payouts.move(
        payout_id,
        [PayoutStatus.REQUESTED, PayoutStatus.APPROVED],
        PayoutStatus.REJECTED,
        reason=reason,
        decided_by=actor,
        decided_at=now,
    )
    p = _decided(uow, payout_id, moved)
    legs: list[Leg] = [
        (p.user_id, AccountKind.WITHDRAWING, -p.amount, p.currency),
        (p.user_id, AccountKind.AVAILABLE, p.amount, p.currency),
    ]
    post(uow, f"payout:{p.id}:rejected", "payout_rejected", legs, now, actor=actor)
    uow.repo.audit.add(now, actor, "payout_rejected", reason=reason, **_money(p))
    told = PayoutRejected(payout_id=p.id, amount=p.amount, currency=p.currency, reason=reason)
    write_message(uow, p.user_id, told, now)
    uow.commit()
    return p


def _queue(uow: UnitOfWork, page: int, page_size: int) -> PayoutQueue:
    r = uow.repo.payouts
    total = r.count_open()
    return PayoutQueue(r.queue(page * page_size, page_size), page, page_size, total)
