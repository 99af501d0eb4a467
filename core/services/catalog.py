"""Categories and products."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.catalog_cache import CATALOG_VERSION, CatalogSnapshot
from core.context import STARS, Context, ShopConfig, UnitOfWork
from core.errors import (
    CategoryNotFound,
    DeliveryKindChangeRefused,
    InvalidInput,
    ProductNotFound,
)
from core.models import Category, DeliveryKind, Product
from core.rates import checked_rates

MAX_QTY_PER_ORDER = 1000  # an order larger than this is a typo or an attack, whatever the product says
MAX_PRICE = 10**12  # minor units
MAX_VALIDITY_DAYS = 3650
MAX_POSITION = 2**31 - 1  # a category's position is an INTEGER column
# Telegram refuses a Stars invoice of more than 10,000 Stars (the per-payment bound bots are held to; the
# emulator enforces the same, ``sandbox.telegram.payments.STARS_MAX``). Raise it if Telegram lifts it.
STARS_MAX_PER_INVOICE = 10_000
# Telegram refuses a fiat invoice above about US$10,000 in its currency (``max_amount`` in
# core.telegram.org/bots/payments/currencies.json, which moves with exchange rates). The core knows no rates,
# only the currency's exponent, so it refuses what no supported currency allows: even the weakest (about
# 25,000 units per US dollar) stays under 10^9 units for US$10,000.
FIAT_MAX_UNITS_PER_INVOICE = 10**9


def invoice_max(currency: str, exponent: int = 0) -> int:
    """The largest total one invoice in ``currency`` (whose minor unit is 10^-``exponent``) may ask for,
    in its smallest unit (Stars: whole)."""
    if currency == STARS:
        return STARS_MAX_PER_INVOICE
    return FIAT_MAX_UNITS_PER_INVOICE * 10**exponent


def largest_qty(product: Product, currency: str = STARS, exponent: int = 0) -> int:
    """The largest quantity of ``product`` one invoice in ``currency`` can take: its ``max_qty``, or less
    when price × quantity would exceed what Telegram accepts (never below ``min_qty``: saving a product
    refuses a price whose smallest order is too large already)."""
    unit = product.price_stars if currency == STARS else product.price
    if unit <= 0:
        return product.max_qty
    return max(product.min_qty, min(product.max_qty, invoice_max(currency, exponent) // unit))


@dataclass(frozen=True, slots=True)
class ProductDraft:
    """The editable fields of a product, validated as a whole."""

    name: str
    price: int = 0
    price_stars: int = 0
    description: str = ""
    category_id: int | None = None
    active: bool = True
    delivery_kind: DeliveryKind = DeliveryKind.UNIQUE
    validity_days: int | None = None
    min_qty: int = 1
    max_qty: int = 10
    low_stock_threshold: int = 0
    user_limit: int | None = None
    user_limit_hours: int | None = None
    daily_limit: int | None = None
    requires_phone: bool = False
    commission_rates: tuple[int, ...] | None = None  # basis points per level; None: the shop's rates

    @classmethod
    def of(cls, product: Product) -> ProductDraft:
        return cls(**{f.name: getattr(product, f.name) for f in dataclasses.fields(cls)})

    def validate(self, currency: str = "USD", exponent: int = 2) -> ProductDraft:
        """The draft, normalized, if it is a product the shop can sell (prices in ``currency``, the shop's
        currency with minor unit 10^-``exponent``, and Stars); else ``InvalidInput`` naming the field."""
        name = " ".join(self.name.split())
        if not 1 <= len(name) <= 64:
            raise InvalidInput("name must be 1 to 64 characters", field="name")
        if len(self.description) > 2000:
            raise InvalidInput("description must be at most 2000 characters", field="description")
        for fname in ("price", "price_stars"):
            v = getattr(self, fname)
            if type(v) is not int or not 0 <= v <= MAX_PRICE:
                raise InvalidInput(f"{fname} must be a whole number from 0 to {MAX_PRICE}", field=fname)
        if self.price == 0 and self.price_stars == 0:
            raise InvalidInput("a product needs a price, in the shop currency or in Stars", field="price")
        kind = DeliveryKind(self.delivery_kind)
        if self.validity_days is not None and not 1 <= self.validity_days <= MAX_VALIDITY_DAYS:
            raise InvalidInput(f"validity must be 1 to {MAX_VALIDITY_DAYS} days", field="validity_days")
        if not 1 <= self.min_qty <= self.max_qty <= MAX_QTY_PER_ORDER:
            raise InvalidInput(
                f"need 1 <= min quantity <= max quantity <= {MAX_QTY_PER_ORDER}", field="max_qty"
            )
        for fname, cur, exp in (("price_stars", STARS, 0), ("price", currency, exponent)):
            unit, most = getattr(self, fname), invoice_max(cur, exp)
            if unit * self.min_qty > most:
                raise InvalidInput(
                    f"{fname} × min quantity must be at most {most} (Telegram refuses a larger invoice)",
                    field=fname,
                )
        if self.low_stock_threshold < 0:
            raise InvalidInput("low-stock threshold must not be negative", field="low_stock_threshold")
        if (self.user_limit is None) != (self.user_limit_hours is None):
            raise InvalidInput(
                "a per-user limit needs both a count and a window in hours", field="user_limit"
            )
        if self.user_limit is not None and (
            self.user_limit < 1 or not 1 <= (self.user_limit_hours or 0) <= 24 * 366
        ):
            raise InvalidInput("per-user limit must be >= 1 within 1 hour to 366 days", field="user_limit")
        if self.daily_limit is not None and self.daily_limit < 1:
            raise InvalidInput("daily limit must be at least 1", field="daily_limit")
        rates = self.commission_rates
        if rates is not None:
            try:
                rates = checked_rates(rates)  # a list, when the draft went through JSON
            except (TypeError, ValueError) as e:
                raise InvalidInput(f"commission rates {e}", field="commission_rates") from None
        return dataclasses.replace(self, name=name, delivery_kind=kind, commission_rates=rates)


class CatalogService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def add_category(
        self, name: str, description: str = "", position: int = 0, *, actor: str = "system"
    ) -> int:
        name, description, position = category_fields(name, description, position)
        cid = await self.ctx.write(_add_category, name, description, position, actor, self.ctx.clock.now())
        self.ctx.catalog.catalog_changed()
        return cid

    async def update_category(
        self,
        category_id: int,
        *,
        actor: str = "system",
        name: str | None = None,
        description: str | None = None,
        position: int | None = None,
    ) -> Category:
        """Rename a category, or change its description or position (audited)."""
        now = self.ctx.clock.now()
        change = (name, description, position)
        category = await self.ctx.write(_update_category, category_id, change, actor, now)
        self.ctx.catalog.catalog_changed()
        return category

    async def categories(self, *, active_only: bool = True) -> list[Category]:
        if active_only:
            return list((await self.snapshot()).categories)
        return await self.ctx.read(_categories, active_only)

    async def add_product(self, draft: ProductDraft, *, actor: str = "system") -> int:
        draft = draft.validate(self.ctx.config.currency, self.ctx.config.currency_exponent)
        pid = await self.ctx.write(_add_product, draft, actor, self.ctx.clock.now())
        self.ctx.catalog.catalog_changed()
        return pid

    async def update_product(self, product_id: int, *, actor: str = "system", **changes: Any) -> Product:
        product = await self.ctx.write(self._update_product, product_id, actor, changes, self.ctx.clock.now())
        self.ctx.catalog.catalog_changed()
        return product

    def _update_product(
        self, uow: UnitOfWork, product_id: int, actor: str, changes: dict[str, Any], now: datetime
    ) -> Product:
        product = apply_update(uow, self.ctx.config, product_id, actor, changes, now)
        uow.commit()
        return product

    async def product(self, product_id: int) -> Product:
        """A product as the shop shows it (from the in-memory catalog, ``core.catalog_cache``)."""
        p = (await self.snapshot()).products.get(product_id)
        if p is None:
            raise ProductNotFound(f"no product {product_id}", product_id=product_id)
        return p

    async def shelf(self, category_id: int | None = None) -> list[tuple[Product, int]]:
        """Products on sale (in a category, or all) with their available unique-key stock."""
        s = await self.snapshot()
        return [
            (p, s.available.get(p.id, 0))
            for p in s.products.values()
            if p.active and (category_id is None or p.category_id == category_id)
        ]

    async def card(self, product_id: int) -> tuple[Product, int]:
        """One product and its available unique-key stock."""
        s = await self.snapshot()
        p = s.products.get(product_id)
        if p is None:
            raise ProductNotFound(f"no product {product_id}", product_id=product_id)
        return p, s.available.get(product_id, 0)

    async def snapshot(self) -> CatalogSnapshot:
        """The in-memory catalog, brought up to date first when it may be behind (at most one small read
        a second; a full reload only when the catalog changed)."""
        cache = self.ctx.catalog
        if not cache.needs_check():
            assert cache.snapshot is not None
            return cache.snapshot
        async with cache.lock():  # one reload for many viewers
            if cache.needs_check():
                seen = cache.generation
                fresh = await self.ctx.read(_refresh, cache.snapshot, cache.clock)
                if cache.generation != seen:  # changed here while it read: this view only, the next reloads
                    return fresh
                cache.snapshot = fresh
                cache.checked_at = cache.clock()
                cache.stock_stale = False
        assert cache.snapshot is not None
        return cache.snapshot

    async def products(self, *, active_only: bool = False, category_id: int | None = None) -> list[Product]:
        return await self.ctx.read(_products, active_only, category_id)


# ---------------------------------------------------------------- transactions (on the database thread)


def apply_update(
    uow: UnitOfWork, config: ShopConfig, product_id: int, actor: str, changes: dict[str, Any], now: datetime
) -> Product:
    """Change a product inside the caller's transaction (which commits), audited; see ``update_product``."""
    current = uow.repo.catalog.product(product_id, lock=True)
    if current is None:
        raise ProductNotFound(f"no product {product_id}", product_id=product_id)
    try:
        draft = dataclasses.replace(ProductDraft.of(current), **changes).validate(
            config.currency, config.currency_exponent
        )
    except TypeError as e:
        raise InvalidInput(str(e)) from None
    moved_to = draft.category_id if "category_id" in changes else None
    if moved_to is not None and not uow.repo.catalog.category_exists(moved_to):
        raise CategoryNotFound(category_id=draft.category_id)
    if draft.delivery_kind is not current.delivery_kind:
        # Open orders were made for the old kind (reserved keys, an awaited manual delivery):
        # under the new one they would never be delivered or released. On SQLite this write
        # transaction excludes checkouts; on PostgreSQL a checkout that read the product just
        # before the lock above can still commit an order of the old kind (checkout does not
        # lock the product row).
        open_orders = uow.repo.catalog.open_orders(product_id)
        if open_orders:
            raise DeliveryKindChangeRefused(product_id=product_id, name=current.name, orders=open_orders)
    values = dataclasses.asdict(draft)
    uow.repo.catalog.update_product(product_id, **values)
    uow.repo.audit.add(now, actor, "product_updated", product_id=product_id, fields=sorted(changes))
    product = uow.repo.catalog.product(product_id)
    uow.repo.cursors.bump(CATALOG_VERSION, now)
    assert product is not None
    return product


def category_fields(name: str, description: str, position: int) -> tuple[str, str, int]:
    name = " ".join(name.split())
    if not 1 <= len(name) <= 64:
        raise InvalidInput("name must be 1 to 64 characters", field="name")
    if len(description) > 2000:
        raise InvalidInput("description must be at most 2000 characters", field="description")
    if type(position) is not int or not -MAX_POSITION <= position <= MAX_POSITION:
        raise InvalidInput(f"position must be from -{MAX_POSITION} to {MAX_POSITION}", field="position")
    return name, description, position


def _add_category(
    uow: UnitOfWork, name: str, description: str, position: int, actor: str, now: datetime
) -> int:
    cid = insert_category(uow, name, description, position, actor, now)
    uow.commit()
    return cid


def insert_category(
    uow: UnitOfWork, name: str, description: str, position: int, actor: str, now: datetime
) -> int:
    cid = uow.repo.catalog.add_category(name=name, description=description, position=position, active=True)
    uow.repo.audit.add(now, actor, "category_added", category_id=cid, name=name)
    uow.repo.cursors.bump(CATALOG_VERSION, now)
    return cid


def _update_category(
    uow: UnitOfWork,
    category_id: int,
    change: tuple[str | None, str | None, int | None],
    actor: str,
    now: datetime,
) -> Category:
    name, description, position = change
    r = uow.repo.catalog
    current = r.category(category_id)
    if current is None:
        raise CategoryNotFound(category_id=category_id)
    new = category_fields(
        current.name if name is None else name,
        current.description if description is None else description,
        current.position if position is None else position,
    )
    r.update_category(category_id, name=new[0], description=new[1], position=new[2])
    fields = [f for f, v in zip(("name", "description", "position"), change, strict=True) if v is not None]
    uow.repo.audit.add(now, actor, "category_updated", category_id=category_id, fields=fields)
    uow.repo.cursors.bump(CATALOG_VERSION, now)
    updated = r.category(category_id)
    assert updated is not None
    uow.commit()
    return updated


def _categories(uow: UnitOfWork, active_only: bool) -> list[Category]:
    return uow.repo.catalog.categories(active_only=active_only)


def _add_product(uow: UnitOfWork, draft: ProductDraft, actor: str, now: datetime) -> int:
    pid = insert_product(uow, draft, actor, now)
    uow.commit()
    return pid


def insert_product(uow: UnitOfWork, draft: ProductDraft, actor: str, now: datetime) -> int:
    if draft.category_id is not None and not uow.repo.catalog.category_exists(draft.category_id):
        raise CategoryNotFound(f"no category {draft.category_id}", category_id=draft.category_id)
    pid = uow.repo.catalog.add_product(**dataclasses.asdict(draft), created_at=now)
    uow.repo.audit.add(now, actor, "product_added", product_id=pid, name=draft.name)
    uow.repo.cursors.bump(CATALOG_VERSION, now)
    return pid


def _refresh(uow: UnitOfWork, current: CatalogSnapshot | None, clock: Callable[[], float]) -> CatalogSnapshot:
    """The catalog as it is now: the same snapshot with fresh counts if only stock may have moved, a
    whole new one if the catalog version moved (or there is none yet)."""
    r = uow.repo
    version = r.cursors.get(CATALOG_VERSION) or 0
    now = clock()
    if current is None or version != current.version:
        products = {p.id: p for p in r.catalog.products(active_only=False)}
        categories = r.catalog.categories(active_only=True)
        return CatalogSnapshot(version, products, categories, r.keys.available_by_product(), now)
    return dataclasses.replace(current, available=r.keys.available_by_product(), stock_read_at=now)


def _products(uow: UnitOfWork, active_only: bool, category_id: int | None) -> list[Product]:
    return uow.repo.catalog.products(active_only=active_only, category_id=category_id)
