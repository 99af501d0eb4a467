from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Generator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import Connection, insert, text, update

from core import tables as t
from core.clock import FrozenClock
from core.context import Context, ShopConfig
from core.db import Database
from core.models import STARS, DeliveryKind, Order, OrderStatus, PaymentResult
from core.services import Services
from core.services.catalog import ProductDraft
from core.tables import metadata
from core.uow import UnitOfWork
from core.vault import Vault, new_key_spec
from tests.workers import REDIS_DATABASES, isolate

_T = TypeVar("_T")

# Each xdist worker's own PostgreSQL and Redis databases, before any test module reads the variables.
isolate()

PROCESSES = pytest.mark.xdist_group("processes")
"""The mark of a module whose tests start keyshop processes (or a browser): ``--dist loadgroup`` runs them
all on one worker, so that two such tests never compete for the cores with each other's deadlines."""


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """``pytest`` alone runs on every core: ``-n auto --dist loadgroup`` unless ``-n`` was given (``-n 0``
    runs in this process), xdist is off (``-p no:xdist``), or a debugger is asked for (``--pdb``,
    ``--trace``, or ``-s`` for a ``breakpoint()``: a worker's stdin is not the terminal)."""
    if not config.pluginmanager.hasplugin("xdist") or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    opt = config.option
    if opt.numprocesses is not None or opt.dist != "no" or opt.collectonly:
        return
    if opt.usepdb or opt.trace or opt.capture == "no":
        return
    opt.numprocesses = "auto"
    opt.dist = "loadgroup"


@pytest.hookimpl(wrapper=True, optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> Generator[None, int, int]:
    """``-n auto`` starts at most one worker per Redis database (tests/workers.py): on more cores, a 17th
    worker would share the first one's."""
    cores = yield
    return min(cores, REDIS_DATABASES)


PG_URL = os.environ.get("TEST_DATABASE_URL")
PG_SKIP_REASON = "TEST_DATABASE_URL is not set: PostgreSQL variant skipped (.ci/run sets it)"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=[pytest.mark.postgres, pytest.mark.skipif(not PG_URL, reason=PG_SKIP_REASON)],
    ),
]


def _drop_schema(conn: Connection) -> None:
    conn.execute(text("DROP SCHEMA public CASCADE"))
    conn.execute(text("CREATE SCHEMA public"))


async def reset_postgres(db: Database) -> None:
    """Empty the test database: drop our tables and alembic's, whatever a previous test left."""
    await db.run_committed(_drop_schema)


async def create_schema(db: Database) -> None:
    await db.run_committed(metadata.create_all)


async def sql(target: Services | Database, stmt: Any, params: Any = None) -> list[Any]:
    """One statement in its own committed write transaction (a test reaching under the services: seeding,
    simulating damage). Returns the rows of a statement that returns rows, else []."""
    db = target.ctx.db if isinstance(target, Services) else target
    return list(await db.run_committed(_execute, stmt, params))


async def query(target: Services | Database, stmt: Any, params: Any = None) -> list[Any]:
    """The rows of one read-only statement."""
    db = target.ctx.db if isinstance(target, Services) else target
    return list(await db.read(_execute, stmt, params))


def _execute(conn: Connection, stmt: Any, params: Any) -> list[Any]:
    res = conn.execute(stmt, params) if params is not None else conn.execute(stmt)
    return list(res.all()) if res.returns_rows else []


async def in_write(shop: Services, fn: Callable[[UnitOfWork], _T]) -> _T:
    """``fn(uow)`` in a write unit of work of the shop, committed when it returns."""
    return await shop.ctx.write(_committed, fn)


async def in_read(shop: Services, fn: Callable[[UnitOfWork], _T]) -> _T:
    """``fn(uow)`` in a read-only unit of work of the shop."""
    return await shop.ctx.read(_called, fn)


def _committed(uow: UnitOfWork, fn: Callable[[UnitOfWork], _T]) -> _T:
    out = fn(uow)
    uow.commit()
    return out


def _called(uow: UnitOfWork, fn: Callable[[UnitOfWork], _T]) -> _T:
    return fn(uow)


async def make_db(backend: str, tmp_path: Path, *, create: bool = True) -> Database:
    if backend == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'shop.db'}", pool_size=20)
    else:
        assert PG_URL
        db = Database(PG_URL, pool_size=20)
        await reset_postgres(db)
    if create:
        await create_schema(db)
    return db


@pytest.fixture
def vault_spec() -> str:
    return new_key_spec("k1")


@pytest.fixture
def vault(vault_spec: str) -> Vault:
    return Vault.from_spec(vault_spec)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    d = await make_db("sqlite", tmp_path)
    yield d
    await d.dispose()


@pytest.fixture(params=BACKENDS)
async def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    d = await make_db(request.param, tmp_path)
    yield d
    await d.dispose()


@pytest.fixture
def shop(db: Database, vault: Vault, clock: FrozenClock) -> Services:
    return Services(Context(db=db, vault=vault, config=ShopConfig(currency="USD"), clock=clock))


@pytest.fixture
def any_shop(any_db: Database, vault: Vault, clock: FrozenClock) -> Services:
    return Services(Context(db=any_db, vault=vault, config=ShopConfig(currency="USD"), clock=clock))


def draft(**kw: object) -> ProductDraft:
    base: dict[str, object] = {"name": "Steam 10 USD", "price": 990, "price_stars": 50, "max_qty": 5}
    base.update(kw)
    return ProductDraft(**base)  # type: ignore[arg-type]


async def stocked(shop: Services, n: int, **kw: object) -> int:
    """A unique-key product with keys KEY-0000.. KEY-(n-1)."""
    import io

    pid = await shop.catalog.add_product(draft(**kw))
    if n:
        data = "".join(f"KEY-{i:04d}\n" for i in range(n)).encode()
        await shop.stock.import_keys(pid, io.BytesIO(data))
    return pid


async def buyer(shop: Services, ext: str = "1001", **changes: object) -> int:
    user = await shop.users.ensure("telegram", ext, language="en")
    if "phone" in changes:
        await shop.users.set_phone(user.id, str(changes["phone"]))
    if changes.get("blocklisted"):
        await shop.users.set_blocklisted(user.id, True)
    return user.id


async def pay(shop: Services, order: Order, charge: str = "ch-1", amount: int | None = None) -> PaymentResult:
    """Confirm a Telegram charge for the order: its own amount and currency unless told otherwise."""
    return await shop.payments.confirm_payment(
        "telegram", charge, order.ref, order.amount if amount is None else amount, order.currency
    )


async def key_statuses(shop: Services, product_id: int) -> dict[str, int]:
    rows = await in_read(shop, lambda uow: uow.repo.keys.count_by_status(product_id))
    return {c.status: c.count for c in rows}


async def outbox_kinds(shop: Services) -> list[str]:
    return [r.kind for r in await in_read(shop, lambda uow: uow.repo.outbox.pending())]


async def outbox_rows(shop: Services) -> list[tuple[int, str, dict[str, Any]]]:
    return [
        (r.user_id, r.kind, r.payload) for r in await in_read(shop, lambda uow: uow.repo.outbox.pending())
    ]


async def payment_row(shop: Services, charge: str) -> Any:
    return await in_read(shop, lambda uow: uow.repo.payments.get("telegram", charge))


async def refer(shop: Services, uid: int, referrer: int) -> None:
    """Record ``referrer`` as ``uid``'s referrer directly (the attribution rules are test_referrals.py's)."""
    await sql(shop, update(t.users).where(t.users.c.id == uid).values(referrer_id=referrer))


async def referral_chain(shop: Services) -> tuple[int, int, int]:
    """top refers mid, mid refers the buyer: (buyer, mid, top)."""
    top = await buyer(shop, "9001")
    mid = await buyer(shop, "9002")
    await refer(shop, mid, top)
    uid = await buyer(shop, "9003")
    await refer(shop, uid, mid)
    return uid, mid, top


async def bought(
    shop: Services, uid: int, *, currency: str = "USD", charge: str = "ch-1", **kw: object
) -> Order:
    """``uid`` buys one key of a fresh product (``kw``: its draft's fields) and pays: the order."""
    pid = await stocked(shop, 3, **kw)
    order = await shop.checkout.checkout(uid, pid, 1, currency)
    await pay(shop, order, charge=charge)
    return order


async def seed_memberships(
    shop: Services,
    n: int,
    *,
    ends_at: datetime,
    first_chat: int = 700_000,
    language: str = "en",
    validity_days: int = 30,
) -> list[str]:
    """``n`` Telegram buyers (chats ``first_chat``, ``first_chat + 1``, …), each holding one delivered order
    of one new membership product (manual delivery, ``validity_days``) whose membership ends at
    ``ends_at``: with ``ends_at`` up to 3 days ahead of the shop's clock (or up to 7 days past), ``n``
    membership reminders are due. Bulk INSERTs, no checkout (10,000 orders take about a second); the
    orders hold no keys, which no reminder reads. Returns the order references, by chat."""
    pid = await shop.catalog.add_product(
        draft(name="VIP", price_stars=100, delivery_kind=DeliveryKind.MANUAL, validity_days=validity_days)
    )
    delivered = ends_at - timedelta(days=validity_days)
    created = delivered - timedelta(minutes=1)
    chats = [str(first_chat + i) for i in range(n)]
    users = [
        {"channel": "telegram", "external_id": c, "language": language, "created_at": created} for c in chats
    ]
    ids = await sql(shop, insert(t.users).returning(t.users.c.id, sort_by_parameter_order=True), users)
    refs = [f"M{c}" for c in chats]
    orders = [
        {
            "ref": ref,
            "user_id": uid,
            "product_id": pid,
            "quantity": 1,
            "currency": STARS,
            "amount": 100,
            "status": OrderStatus.DELIVERED.value,
            "created_at": created,
            "expires_at": created + timedelta(minutes=15),
            "paid_at": delivered,
            "delivered_at": delivered,
            "membership_expires_at": ends_at,
        }
        for ref, (uid,) in zip(refs, ids, strict=True)
    ]
    await sql(shop, insert(t.orders), orders)
    return refs
