"""Hostile and careless buyers for the property-based end-to-end test: a fresh shop per example, the actions
they take through the Bot API emulator, how to wait until the bot has handled all of it, and the shop's
invariants read back from the database and the emulator.

Nothing here sleeps for a fixed time and hopes: the harness records every update the emulator queued for
the bot and every update the dispatcher finished, and waits (bounded) until each queued update the bot
subscribed to is finished; the outbox is drained by polling its table with a deadline.

The shop runs under the e2e fixture's rules: the emulator's default (Telegram's) flood limits, so the bot
may be told 429 and the throttle middleware may refuse a fast user; both are legitimate answers, and the
invariants only ask that nothing goes wrong because of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import logging
import re
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiogram import Bot
from aiogram.types import Update
from sqlalchemy import func, select

from bot.app import Storefront, make_bot
from bot.settings import Settings
from core import tables as t
from core.clock import ShiftedClock
from core.context import Context, ShopConfig
from core.models import DeliveryKind, KeyStatus, OrderStatus
from core.services import Services
from core.services.catalog import ProductDraft
from core.uow import UnitOfWork
from core.vault import Vault, new_key_spec
from sandbox.telegram import GROUP_ANONYMOUS_BOT, EmuChat, Emulator, Sent, serve
from tests.conftest import in_read, make_db, query
from tests.e2e.conftest import ADMIN, TOKEN, Shop, without_calendar_jobs

# Buyers: one per language situation, and one whose display name is itself hostile.
USERS: dict[int, tuple[str, str | None]] = {
    501: ("Ann", "en"),
    502: ("李雷", "zh-hans"),
    503: ("Nobody", None),
    504: ("Eve <b>&amp; Co</b>", "en"),
}
SHARED_KEY = "SHARED-KEY-0001"
# Where buyers also meet: a supergroup and a basic group they are all members of (the first buyer is an
# admin, who can post anonymously), and a channel the bot is in.
SUPERGROUP, BASIC_GROUP, CHANNEL = -1001000000501, -501, -1001000000900
KEY_RE = re.compile(r"KEY-\d+-\d{4}")
SETTLE_SECONDS = 15.0  # bound on waiting for the bot, the jobs and the outbox after an example
# Admin messages that are the shop working, not an alert caused by a buyer.
ROUTINE_ADMIN = ("🧾 manual order",)


# ---------------------------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class Catalog:
    """The products of one example (names drawn by Hypothesis, kinds fixed)."""

    unique_name: str  # a unique-key product with little stock
    last_name: str  # a unique-key product with one key: buyers race for it
    shared_name: str
    manual_name: str


@dataclass
class Product:
    id: int
    kind: DeliveryKind
    imported: int  # keys put into stock (unique products)


async def stock_catalog(services: Services, cat: Catalog) -> list[Product]:
    out: list[Product] = []

    async def add(name: str, kind: DeliveryKind, keys: int, **draft: Any) -> None:
        fields: dict[str, Any] = {"name": name, "price": 990, "price_stars": 5, "max_qty": 3}
        fields.update(draft)
        pid = await services.catalog.add_product(ProductDraft(delivery_kind=kind, **fields))
        if keys:
            data = "".join(f"KEY-{pid}-{i:04d}\n" for i in range(keys)).encode()
            await services.stock.import_keys(pid, io.BytesIO(data))
        out.append(Product(pid, kind, keys))

    await add(cat.unique_name, DeliveryKind.UNIQUE, 3, description="Tom & Jerry <3 — a <i>gift</i>")
    await add(cat.last_name, DeliveryKind.UNIQUE, 1, price_stars=7, max_qty=2)
    await add(cat.shared_name, DeliveryKind.SHARED, 0, price_stars=3)
    await services.stock.set_shared_key(out[-1].id, SHARED_KEY)
    await add(cat.manual_name, DeliveryKind.MANUAL, 0, price_stars=9, max_qty=1)
    return out


# ---------------------------------------------------------------------------------------------- the shop


@dataclass
class Tracker:
    """What the emulator queued for the bot and what the dispatcher finished, so waiting is counting, not
    sleeping. Updates of a type the bot did not subscribe to (``allowed_updates``, e.g. ``channel_post``)
    are dropped by Telegram, so nobody waits for them."""

    queued: list[tuple[int, str]] = field(default_factory=list)  # (update id, update type)
    finished: set[int] = field(default_factory=set)
    in_flight: int = 0
    queries: list[tuple[int, str, str]] = field(default_factory=list)  # (user, query id, data)
    subscribed: frozenset[str] = frozenset()

    def outstanding(self) -> int:
        return sum(1 for uid, kind in self.queued if kind in self.subscribed and uid not in self.finished)


class ErrorRecords(logging.Handler):
    """Every ERROR (or worse) record logged anywhere while an example runs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _track(front: Storefront, emu: Emulator, tracker: Tracker) -> None:
    """Record every update the emulator queues (all of them pass through its one ``_push``) and every
    update this dispatcher finishes (polling calls ``feed_update`` per update). Counting at the source
    keeps the harness right whatever the emulator decides: a refused payment queues nothing."""
    inner_push = emu._push

    async def push(**update: Any) -> dict[str, Any]:
        queued = await inner_push(**update)
        tracker.queued.append((int(queued["update_id"]), next(k for k in queued if k != "update_id")))
        return queued

    emu._push = push  # type: ignore[method-assign]
    tracker.subscribed = frozenset(front.dp.resolve_used_update_types())
    inner_feed = front.dp.feed_update

    async def feed_update(bot: Bot, update: Update, **kwargs: Any) -> Any:
        tracker.in_flight += 1
        try:
            return await inner_feed(bot, update, **kwargs)
        finally:
            tracker.in_flight -= 1
            tracker.finished.add(update.update_id)

    front.dp.feed_update = feed_update  # type: ignore[method-assign]


@contextlib.asynccontextmanager
async def open_shop() -> AsyncIterator[tuple[Shop, Tracker]]:
    """The e2e ``shop`` fixture's set-up as a context manager, so each Hypothesis example gets a fresh shop
    (own SQLite file, own emulator, own bot), plus the update tracker."""
    with tempfile.TemporaryDirectory(prefix="keyshop-prop-") as tmp:
        tmp_path = Path(tmp)
        db = await make_db("sqlite", tmp_path)
        clock = ShiftedClock()
        services = Services(Context(db, Vault.from_spec(new_key_spec()), ShopConfig(currency="USD"), clock))
        # Telegram's flood limits, as the e2e fixture keeps them. Telegram waits 10 s for a pre-checkout
        # answer; the bot answers in milliseconds, and a crashed handler should not stall an example long.
        emu = Emulator(token=TOKEN, pre_checkout_timeout=3.0)
        runner, url = await serve(emu)
        emu.user(ADMIN, "Admin")
        for uid, (name, lang) in USERS.items():
            emu.user(uid, name, lang)
        emu.group(SUPERGROUP, "Buyers & <friends>", members=list(USERS), admins=[min(USERS)])
        emu.group(BASIC_GROUP, "Old group", members=list(USERS), admins=[min(USERS)], type="group")
        emu.channel(CHANNEL, "Shop news")
        settings = Settings.load(_env_file=None, admin_ids=[ADMIN], data_dir=tmp_path)
        front = without_calendar_jobs(
            Storefront.build(services, settings, make_bot(TOKEN, url), sender={"private_interval": 0.05})
        )
        tracker = Tracker()
        _track(front, emu, tracker)
        await front.start_background()
        await front.start_polling()
        try:
            yield Shop(emu, front, services, clock, url), tracker
        finally:
            await emu.shutdown()
            await front.stop()
            await runner.cleanup()
            await db.dispose()


# ---------------------------------------------------------------------------------------------- world


@dataclass
class World:
    """One example's shop, products and bookkeeping, shared by the actions."""

    shop: Shop
    tracker: Tracker
    products: list[Product]
    users: list[int]

    @property
    def emu(self) -> Emulator:
        return self.shop.emu

    def user(self, seed: int) -> int:
        return self.users[seed % len(self.users)]

    def product_id(self, seed: int) -> int:
        """Seeds past the catalog name products that do not exist."""
        if seed < len(self.products):
            return self.products[seed].id
        return self.products[-1].id + seed

    forwarded: dict[int, list[Sent]] = field(default_factory=lambda: defaultdict(list))
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # for the statistics

    @property
    def groups(self) -> list[EmuChat]:
        """The chats buyers share (supergroup, basic group) and the channel, in that order."""
        return [self.emu.chats[SUPERGROUP], self.emu.chats[BASIC_GROUP], self.emu.chats[CHANNEL]]

    def sent_invoices(self, user: int) -> list[Sent]:
        """The invoices the bot sent to ``user``: their own orders."""
        return [s for s in self.emu.messages(user) if s.method == "sendInvoice"]

    def invoices(self, user: int) -> list[Sent]:
        """Every invoice ``user`` can see: their own, then the copies others forwarded to them."""
        return self.sent_invoices(user) + self.forwarded[user]

    def forward(self, owner: int, pick: int, to: int) -> Sent | None:
        """``owner`` forwards one of their invoices to ``to`` (Telegram decides whether it is payable)."""
        own = self.sent_invoices(owner)
        if not own or owner == to:
            return None
        copy = self.emu.forward(owner, own[pick % len(own)], to)
        self.forwarded[to].append(copy)
        return copy

    async def order_refs(self) -> list[str]:
        return [r[0] for r in await query(self.shop.services, select(t.orders.c.ref).order_by(t.orders.c.id))]

    async def tap(self, user: int, sent: Sent | dict[str, Any], data: str) -> None:
        qid = await self.emu.tap(user, sent, data)
        self.tracker.queries.append((user, qid, data))

    async def quiesce(self, within: float = 15.0) -> None:
        """Until the dispatcher has finished every update queued for it (bounded). A handler may wait out
        one short flood limit (up to 3 s), so the bound is generous."""
        deadline = time.monotonic() + within
        while self.tracker.outstanding() or self.tracker.in_flight:
            if time.monotonic() > deadline:
                raise BotStuck(
                    f"the bot left {self.tracker.outstanding()} of {len(self.tracker.queued)} updates "
                    f"unfinished within {within} s ({self.tracker.in_flight} still running)"
                )
            await asyncio.sleep(0.01)

    async def run_jobs(self) -> None:
        """Every periodic job the storefront scheduled (expiry sweeper, Stars reconciliation, and whatever
        a later change adds, e.g. payment retries), run now, in order."""
        for job in self.shop.front.scheduler.get_jobs():
            result = job.func(*job.args, **job.kwargs)
            if inspect.isawaitable(result):
                await result

    async def settle(self) -> None:
        """Let the shop finish everything a real one would: updates handled, jobs run, outbox drained. Due
        retries are brought forward by moving the shop's clock (retries are scheduled on it)."""
        await self.quiesce()
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            await self.run_jobs()
            await self.quiesce()
            self.shop.front.outbox.wake()
            pending, next_due = await self._pending_work()
            if not pending:
                # The sender may be between marking a row sent and the next claim: one more look.
                await asyncio.sleep(0.05)
                if not (await self._pending_work())[0]:
                    return
                continue
            if time.monotonic() > deadline:
                raise OutboxStuck(f"{pending} outbox messages or payment notices still pending")
            now = self.shop.clock.now()
            if next_due is not None and next_due > now:
                self.shop.clock.advance(seconds=(next_due - now).total_seconds() + 0.01)
                self.shop.front.outbox.wake()
            await asyncio.sleep(0.05)

    async def _pending_work(self) -> tuple[int, Any]:
        return await in_read(self.shop.services, _pending_work)


def _pending_work(uow: UnitOfWork) -> tuple[int, Any]:
    """Outbox messages and payment notices still pending, and when the first of them is due."""
    n = 0
    due: list[Any] = []
    for table in (t.outbox, t.payment_notices):
        pending = table.c.status == "pending"
        n += int(uow.conn.execute(select(func.count()).where(pending)).scalar_one())
        first = uow.conn.execute(select(func.min(table.c.next_attempt_at)).where(pending)).scalar()
        if first is not None:
            due.append(first)
    return n, (min(due) if due else None)


def _everything(uow: UnitOfWork) -> tuple[list[Any], ...]:
    """Keys, orders, payments, shared-key links and users, in one read transaction."""
    c = uow.conn
    return tuple(
        list(c.execute(select(table)).all())
        for table in (t.keys, t.orders, t.payments, t.order_shared_keys, t.users)
    )


# ---------------------------------------------------------------------------------------------- invariants


class Violation(AssertionError):
    """An invariant of the shop does not hold. Subclasses name which, so Hypothesis tells bugs apart."""


class BotStuck(Violation):
    pass


class OutboxStuck(Violation):
    pass


class ErrorLogged(Violation):
    pass


class AdminAlerted(Violation):
    pass


class CallbackUnanswered(Violation):
    pass


class StockNotConserved(Violation):
    pass


class KeySoldTwice(Violation):
    pass


class ChargeLost(Violation):
    pass


class PersonalInGroup(Violation):
    """Something personal (a key, an order reference, an invoice, a reveal or cancel button) was sent to
    a group or channel."""


class StrangerCreated(Violation):
    """A shop user was made for someone who never wrote to the bot in private (group chatter, an
    anonymous admin, a channel)."""


async def violations(world: World, errors: ErrorRecords) -> list[Violation]:
    """Every invariant that does not hold, each as a Violation of its kind."""
    found: list[Violation] = []
    emu, shop = world.emu, world.shop

    for rec in errors.records:
        exc = rec.exc_info[1] if rec.exc_info else None
        detail = f": {type(exc).__name__}: {exc}" if exc else ""
        found.append(ErrorLogged(f"{rec.name}: {rec.getMessage()}{detail}"))

    # Every alert goes through AdminAlerts to the admin's chat; the one routine notice (a manual order was
    # paid, for the shop to deliver by hand) is no alarm.
    alerts = [s.text for s in emu.messages(ADMIN) if not s.text.startswith(ROUTINE_ADMIN)]
    if alerts:
        found.append(AdminAlerted(f"{shop.front.outbox.alerts.sent} alerts; admin saw {alerts}"))

    for user, qid, data in world.tracker.queries:
        if qid not in emu.callback_answers:
            found.append(CallbackUnanswered(f"user {user} tapped {data!r}: never answered"))

    keys, order_rows, payment_rows, shared_links, user_rows = await in_read(shop.services, _everything)
    orders = {o.id: o for o in order_rows}
    payments = {p.charge_id: p for p in payment_rows}
    users = {u.id: u for u in user_rows}

    # Nothing personal in a group or channel: buyer flows answer in private only.
    refs = {o.ref for o in orders.values()}
    for chat in world.groups:
        for s in emu.messages(chat.id):
            shown = " ".join([s.text, *(str(b.get("url", "")) for b in s.buttons)])
            personal = [
                *KEY_RE.findall(shown),
                *([SHARED_KEY] if SHARED_KEY in shown else []),
                *(f"order {ref}" for ref in refs if ref in shown),
                *(["an invoice"] if s.method == "sendInvoice" or "invoice" in s.message else []),
                *(
                    f"button {b['callback_data']!r}"
                    for b in s.buttons
                    if str(b.get("callback_data", "")).startswith(("k:", "x:", "b:", "o:"))
                ),
            ]
            if personal:
                found.append(PersonalInGroup(f"{chat.type} {chat.id} got {personal} in {s.text[:80]!r}"))
    known = {str(u) for u in (*world.users, ADMIN)}
    strangers = sorted(u.external_id for u in users.values() if u.external_id not in known)
    if strangers:
        found.append(
            StrangerCreated(f"shop users for {strangers} (anonymous admin is {GROUP_ANONYMOUS_BOT['id']})")
        )

    # Stock conserved, and every key where its order says it is.
    for p in world.products:
        if p.kind is not DeliveryKind.UNIQUE:
            continue
        mine = [k for k in keys if k.product_id == p.id]
        counted = sum(
            k.status in (KeyStatus.AVAILABLE, KeyStatus.RESERVED, KeyStatus.SOLD, KeyStatus.VOID)
            for k in mine
        )
        if counted != p.imported or len(mine) != p.imported:
            by: dict[str, int] = defaultdict(int)
            for k in mine:
                by[k.status] += 1
            found.append(StockNotConserved(f"product {p.id}: imported {p.imported}, now {dict(by)}"))
        for k in mine:
            order = orders.get(k.order_id) if k.order_id is not None else None
            if k.status == KeyStatus.RESERVED and (order is None or order.status != OrderStatus.PENDING):
                found.append(
                    StockNotConserved(
                        f"key {k.id} reserved for order {k.order_id} in {order.status if order else None}"
                    )
                )
            if k.status == KeyStatus.SOLD and (order is None or order.status != OrderStatus.DELIVERED):
                found.append(
                    KeySoldTwice(
                        f"key {k.id} sold to order {k.order_id} in {order.status if order else None}"
                    )
                )

    # No key sold twice: a delivered order holds exactly its keys, and no unique key reached two buyers.
    kinds = {p.id: p.kind for p in world.products}
    for o in orders.values():
        if o.status != OrderStatus.DELIVERED:
            continue
        if kinds.get(o.product_id) is DeliveryKind.UNIQUE:
            held = sum(k.order_id == o.id and k.status == KeyStatus.SOLD for k in keys)
        else:
            held = sum(link.order_id == o.id for link in shared_links) + sum(k.order_id == o.id for k in keys)
        if held != (o.quantity if kinds.get(o.product_id) is DeliveryKind.UNIQUE else 1):
            found.append(KeySoldTwice(f"delivered order {o.ref} (qty {o.quantity}) holds {held} keys"))
    seen_by: dict[str, set[int]] = defaultdict(set)
    for user in world.users:
        for s in emu.messages(user):
            for key in KEY_RE.findall(s.text):
                seen_by[key].add(user)
    for key, who in seen_by.items():
        if len(who) > 1:
            found.append(KeySoldTwice(f"{key} was shown to {sorted(who)}"))

    # Every charge ends delivered (to the payer's own order, as its accepted payment) or refunded to
    # its payer.
    refunds = {
        (str(p.get("telegram_payment_charge_id")), str(p.get("user_id")))
        for m, p in emu.calls
        if m.lower() == "refundstarpayment"
    }
    accepted_per_order: dict[int, int] = defaultdict(int)
    for pay in payments.values():
        if pay.status == "accepted" and pay.order_id is not None:
            accepted_per_order[pay.order_id] += 1
    for charge in emu.payments.values():
        row = payments.get(charge.charge_id)
        what = f"charge {charge.charge_id[-6:]} of {charge.amount} by {charge.user_id} for {charge.payload}"
        if charge.refunded:
            if (charge.charge_id, str(charge.user_id)) not in refunds:
                found.append(ChargeLost(f"{what}: refunded, but not to its payer"))
            if row is None or row.status != "refunded":
                found.append(
                    ChargeLost(f"{what}: refunded, but the shop records {row.status if row else None}")
                )
            continue
        order = orders.get(row.order_id) if row is not None and row.order_id is not None else None
        owner = users.get(order.user_id) if order is not None else None
        done = (
            OrderStatus.PAID if kinds.get(order.product_id if order else 0) is DeliveryKind.MANUAL else None
        )
        delivered = (
            row is not None
            and row.status == "accepted"
            and order is not None
            and order.status in (OrderStatus.DELIVERED, done)
            and owner is not None
            and owner.external_id == str(charge.user_id)
            and order.amount == charge.amount
            and accepted_per_order[order.id] == 1
        )
        if not delivered:
            state = (
                f"payment {row.status}/{row.reason}, order {order.ref if order else None} "
                f"{order.status if order else None} of user {owner.external_id if owner else None}"
                if row is not None
                else "no payment recorded"
            )
            found.append(ChargeLost(f"{what}: neither delivered nor refunded ({state})"))
    return found
