"""The back office's orders: finding them, one order in full (payments, audit trail, keys masked), what needs
an admin, and an admin's actions on one order (deliver by hand, resend, cancel, refund, mark paid, and
record a refund made by hand).

Every method takes the admin's ``Grant`` and checks it inside its own transaction, on the order as it is
then: an order of a product outside an operator's scope is "not found" (its existence is not confirmed),
and refunds and payments need ``Power.MONEY``. The actions run the same code as every other path (orders,
refunds and payments services) in that one transaction."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from core.context import Context, UnitOfWork
from core.errors import (
    BuyerNotFound,
    InvalidInput,
    InvalidOrderState,
    NotPermitted,
    OrderNotFound,
    UsernameNotKnown,
)
from core.messages import KeysDelivered
from core.models import Order, OrderStatus, Payment, PaymentResult, Product, User
from core.reactions import write_message
from core.repositories import Repositories
from core.repositories.desk import DeskLine, ListKind, Scope, TrailEntry
from core.roles import Grant, Power
from core.services.orders import MAX_MANUAL_CONTENT, OrderService
from core.services.payments import PaymentService
from core.services.refunds import HandRefund, RefundService
from core.vault import clean_text

PAGE_SIZE = 10  # orders on one page of a list (newest first); ◀️ ▶️ turn the pages
MAX_TRAIL = 15
MAX_NOTE = 200
_REF = re.compile(r"[A-Za-z0-9]{1,32}")
_BUYER = re.compile(r"[1-9][0-9]{0,18}")
_USERNAME = re.compile(r"@[A-Za-z0-9_]{1,32}")  # Telegram's: 5-32 of these (shorter ones are collectible)
_IMPORT = re.compile(r"(?:i|import|batch):([1-9][0-9]{0,17})", re.IGNORECASE)


def mask_key(key: str) -> str:
    """What an order screen shows of a key: ``ABCD…WXYZ``; a key under 12 characters is masked entirely."""
    return f"{key[:4]}…{key[-4:]}" if len(key) >= 12 else "••••"


def scope_of(grant: Grant) -> Scope:
    return Scope(grant.products, grant.categories) if grant.scoped else Scope()


def reach(grant: Grant, order: Order | None, product: Product | None, ref: str, power: Power) -> None:
    """Refuse an order outside ``grant``: out of scope (or unknown) is "not found"; within scope but beyond
    the role's powers, "not permitted"."""
    if order is None or product is None or not grant.covers(product.id, product.category_id):
        raise OrderNotFound(ref=ref)
    if not grant.may(power):
        raise NotPermitted()


@dataclass(frozen=True, slots=True)
class OrderDetail:
    order: Order
    product: Product
    buyer: User
    payments: list[Payment]
    trail: list[TrailEntry]
    keys: list[str]  # masked (``mask_key``)


@dataclass(frozen=True, slots=True)
class OrderList:
    """One page of a list of orders, newest first."""

    lines: list[DeskLine]
    kind: ListKind = "pending"
    key: int = 0  # the buyer's shop user id, or the import batch's id (0 for pending)
    page: int = 0  # 0: the newest
    pages: int = 1  # as counted now (orders keep arriving: a guide, not a bound)
    newer: bool = False  # a page of newer orders exists (◀️)
    older: bool = False  # a page of older orders exists (▶️)


class OrderDesk:
    def __init__(
        self, ctx: Context, orders: OrderService, refunds: RefundService, payments: PaymentService
    ) -> None:
        self.ctx, self._orders, self._refunds, self._payments = ctx, orders, refunds, payments

    # ------------------------------------------------------------------ reading

    async def search(self, query: str, *, channel: str, grant: Grant) -> OrderDetail | OrderList:
        """``query``: an order reference (the order), a buyer's id on ``channel`` or ``i:<import id>`` (their
        orders, newest first), or their @username as last seen."""
        query = query.strip()
        if query.startswith("@"):
            if not _USERNAME.fullmatch(query):
                raise InvalidInput("not a username", field="query")
            return await self.ctx.read(_by_username, channel, query[1:].lower(), scope_of(grant))
        if m := _IMPORT.fullmatch(query):
            return await self.ctx.read(_by_import, int(m.group(1)), scope_of(grant))
        if _BUYER.fullmatch(query):
            return await self.ctx.read(_by_buyer, channel, query, scope_of(grant))
        if _REF.fullmatch(query):
            return await self.detail(query.upper(), grant=grant)
        raise InvalidInput("not an order reference, buyer id or import batch", field="query")

    async def detail(self, ref: str, *, grant: Grant) -> OrderDetail:
        return await self.ctx.read(self._detail, ref[:32], grant)

    def _detail(self, uow: UnitOfWork, ref: str, grant: Grant) -> OrderDetail:
        r = uow.repo
        found = r.orders.with_buyer_and_product(ref)
        order, buyer, product = found if found else (None, None, None)
        reach(grant, order, product, ref, Power.ORDERS)
        assert order is not None and buyer is not None and product is not None
        vault = self.ctx.vault
        # Opened only to be masked here: the plain key never leaves this function.
        keys = [
            mask_key(vault.open_key(k.product_id, k.blind_index, k.ciphertext))
            for k in r.keys.sealed_for_order(order.id)
        ]
        return OrderDetail(
            order, product, buyer, r.payments.for_order(order.id), r.desk.trail(order.id, MAX_TRAIL), keys
        )

    async def pending(self, *, grant: Grant) -> OrderList:
        """Paid manual orders waiting for an admin, and orders with money still to give back."""
        return await self.page("pending", 0, grant=grant)

    async def page(
        self, kind: ListKind, key: int, *, grant: Grant, page: int = 0, before: int = 0, after: int = 0
    ) -> OrderList:
        """A page of a list: orders older than order ``before`` (0: the newest page), or with ``after`` the
        page of orders just newer than it (◀️). Reads one page and one row more, within the grant's scope:
        a buyer or an import batch outside an operator's scope lists nothing (and is not confirmed)."""
        if kind != "pending" and key <= 0:
            raise InvalidInput("a buyer's or an import's list needs its id", field="key")
        return await self.ctx.read(_page, kind, key, scope_of(grant), page, before, after)

    # ------------------------------------------------------------------ actions

    async def deliver(self, ref: str, content: str, *, grant: Grant, actor: str) -> Order:
        """Deliver a paid manual-delivery order by hand; the buyer gets it through the outbox."""
        content = clean_text(content)
        if not 1 <= len(content) <= MAX_MANUAL_CONTENT:
            raise InvalidInput(f"content must be 1 to {MAX_MANUAL_CONTENT} characters", field="content")
        now = self.ctx.clock.now()
        return await self.ctx.write(self._deliver, ref, content, grant, actor, now)

    def _deliver(
        self, uow: UnitOfWork, ref: str, content: str, grant: Grant, actor: str, now: datetime
    ) -> Order:
        _locked(uow.repo, ref, grant, Power.ORDERS)
        return self._orders._deliver_manually(uow, ref, content, actor, now)

    async def resend(self, ref: str, *, grant: Grant, actor: str) -> Order:
        """Send a delivered order's keys to its buyer again (through the outbox). Audited."""
        return await self.ctx.write(self._resend, ref, grant, actor, self.ctx.clock.now())

    def _resend(self, uow: UnitOfWork, ref: str, grant: Grant, actor: str, now: datetime) -> Order:
        order, _ = _locked(uow.repo, ref, grant, Power.ORDERS)
        if order.status is not OrderStatus.DELIVERED:
            raise InvalidOrderState(status=str(order.status))
        write_message(uow, order.user_id, KeysDelivered(order.ref), now)
        uow.repo.audit.add(now, actor, "delivery_resent", product_id=order.product_id, order_id=order.id)
        uow.commit()
        return order

    async def cancel(self, ref: str, *, grant: Grant, actor: str) -> Order:
        """Cancel a pending order; its reserved keys return to stock."""
        return await self.ctx.write(self._cancel, ref, grant, actor, self.ctx.clock.now())

    def _cancel(self, uow: UnitOfWork, ref: str, grant: Grant, actor: str, now: datetime) -> Order:
        _locked(uow.repo, ref, grant, Power.ORDERS)
        return self._orders._cancel(uow, ref, None, actor, now)

    async def refund(self, ref: str, *, grant: Grant, actor: str) -> Order:
        """Refund a paid or delivered order (see ``RefundService.request_refund``). Needs Power.MONEY."""
        return await self.ctx.write(self._refund, ref, grant, actor, self.ctx.clock.now())

    def _refund(self, uow: UnitOfWork, ref: str, grant: Grant, actor: str, now: datetime) -> Order:
        _locked(uow.repo, ref, grant, Power.MONEY)
        return self._refunds._request_refund(uow, ref, actor, "admin", now)

    async def refund_by_hand(self, ref: str, note: str, *, grant: Grant, actor: str) -> HandRefund:
        """Record that the money of the order's charges the channel cannot pay back (fiat, marked paid)
        went back outside the chat, with a mandatory note (``RefundService._refund_by_hand``): the order
        leaves what needs an admin. Needs Power.MONEY. Idempotent (a second call returns no payments)."""
        note = _note(note)
        return await self.ctx.write(self._refund_by_hand, ref, note, grant, actor, self.ctx.clock.now())

    def _refund_by_hand(
        self, uow: UnitOfWork, ref: str, note: str, grant: Grant, actor: str, now: datetime
    ) -> HandRefund:
        order, _ = _locked(uow.repo, ref, grant, Power.MONEY)
        return self._refunds._refund_by_hand(uow, order, note, actor, now)

    async def mark_paid(
        self, ref: str, amount: int, note: str, *, grant: Grant, actor: str, with_commission: bool = False
    ) -> PaymentResult:
        """Record a payment received outside the chat (``PaymentService.confirm_manual``), with a
        mandatory note; ``with_commission``: the buyer's referrers earn commission on it (by default they
        do not). Needs Power.MONEY."""
        note = _note(note)

        def guard(order: Order, product: Product) -> None:
            reach(grant, order, product, ref, Power.MONEY)

        return await self._payments.confirm_manual(
            ref, amount, note=note, actor=actor, guard=guard, with_commission=with_commission
        )


# ---------------------------------------------------------------- transactions (on the database thread)


def _note(note: str) -> str:
    note = " ".join(clean_text(note).split())
    if not 1 <= len(note) <= MAX_NOTE:
        raise InvalidInput(f"a note of 1 to {MAX_NOTE} characters is required", field="note")
    return note


def _locked(r: Repositories, ref: str, grant: Grant, power: Power) -> tuple[Order, Product]:
    found = r.orders.with_product(ref[:128])  # the order locked, with its product
    order, product = found if found else (None, None)
    reach(grant, order, product, ref, power)
    assert order is not None and product is not None
    return order, product


def _page(
    uow: UnitOfWork, kind: ListKind, key: int, scope: Scope, page: int, before: int, after: int
) -> OrderList:
    desk = uow.repo.desk
    rows = desk.listing(kind, key, scope, PAGE_SIZE + 1, before=0 if after else before, after=after)
    if after:  # oldest first: the page is the PAGE_SIZE just newer than ``after``
        newer, older = len(rows) > PAGE_SIZE, True
        lines = rows[:PAGE_SIZE][::-1]
        page = page if newer else 0
    else:
        page = page if before else 0
        newer, older = page > 0, len(rows) > PAGE_SIZE
        lines = rows[:PAGE_SIZE]
    pages = max(1, -(-desk.count(kind, key, scope) // PAGE_SIZE), page + 1 + int(older))
    return OrderList(lines, kind, key, page, pages, newer, older)


def _buyer_list(uow: UnitOfWork, user_id: int, scope: Scope) -> OrderList:
    return _page(uow, "buyer", user_id, scope, 0, 0, 0)


def _by_buyer(uow: UnitOfWork, channel: str, external_id: str, scope: Scope) -> OrderList:
    user = uow.repo.users.get_by_external(channel, external_id)
    if user is None:
        raise BuyerNotFound(who=external_id)
    return _buyer_list(uow, user.id, scope)


def _by_username(uow: UnitOfWork, channel: str, username: str, scope: Scope) -> OrderList:
    user = uow.repo.users.get_by_username(channel, username)
    if user is None:
        raise UsernameNotKnown(who=f"@{username}")
    return _buyer_list(uow, user.id, scope)


def _by_import(uow: UnitOfWork, import_id: int, scope: Scope) -> OrderList:
    return _page(uow, "import", import_id, scope, 0, 0, 0)
