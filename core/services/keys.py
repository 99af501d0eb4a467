"""Staff's work on the keys in stock, beyond importing them (``stock``): voiding one key by its value or the
keys one import brought, and exporting a product's unsold keys.

Every method takes the ``Grant`` of whoever asked and re-checks it against the product in the same
transaction as the change: an operator reaches only the products in their scope, and only owners export.
Only keys still in stock are voided or exported: a reserved key belongs to a pending order, a sold one to
its buyer, so neither is ever voided this way (a refund decides about those).

An export reveals keys, so it is audited (who, which product, how many) in the transaction that reads
them, and each confirmation is honoured once: the channel numbers its confirmations (Telegram: the id of the
confirmation message, which only grows in a chat), and a number is claimed on a cursor per actor, so a
second tap on the same confirmation, or on an older one, reveals nothing more. The keys are returned to
the caller, never written anywhere."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core import importer
from core.catalog_cache import CATALOG_VERSION
from core.context import Context, UnitOfWork
from core.errors import (
    ExportAlreadySent,
    ExportTooLarge,
    ImportBatchNotFound,
    InvalidInput,
    KeyNotInStock,
    NotPermitted,
    ProductNotFound,
    StockNotKept,
)
from core.models import DeliveryKind, KeyStatus, Product, SealedKey
from core.roles import Grant, Power
from core.vault import Vault, normalize_key

EXPORT_CURSOR = "keys_export:"  # + actor: the newest export confirmation honoured for them


@dataclass(frozen=True, slots=True)
class FoundKey:
    """A key of a product found by its value: its id and where it is (available, reserved, sold...)."""

    product: Product
    key_id: int
    status: KeyStatus


@dataclass(frozen=True, slots=True)
class Batch:
    """The keys one import brought to a product, per status."""

    product: Product
    import_id: int
    counts: dict[KeyStatus, int]

    @property
    def available(self) -> int:
        return self.counts.get(KeyStatus.AVAILABLE, 0)

    @property
    def held(self) -> int:
        """Reserved or sold: never voided this way."""
        return self.counts.get(KeyStatus.RESERVED, 0) + self.counts.get(KeyStatus.SOLD, 0)


class KeysService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # ---------------------------------------------------------------- void

    async def find(self, product_id: int, key: str, *, grant: Grant) -> FoundKey:
        """The product's key of this value, found as the importer finds duplicates (the blind index of
        the normalized key), so any way of writing it that the shop takes for the same key finds it."""
        normalized = normalize_key(key)
        if not 1 <= len(normalized) <= importer.MAX_KEY_CHARS:
            raise InvalidInput(f"a key is 1 to {importer.MAX_KEY_CHARS} characters", field="key")
        bidx = self.ctx.vault.blind_index(product_id, normalized)
        return await self.ctx.read(_find, product_id, bidx, grant)

    async def void_key(self, product_id: int, key_id: int, *, grant: Grant, actor: str) -> int:
        """Void one key if it is still in stock: 1, or 0 when it is not (reserved, sold, void already)."""
        now = self.ctx.clock.now()
        return await self.ctx.write(_void, product_id, grant, actor, now, key_id, None)

    async def batch(self, product_id: int, import_id: int, *, grant: Grant) -> Batch:
        """What is left of an import's keys in a product (for the confirmation)."""
        return await self.ctx.read(_batch, product_id, import_id, grant)

    async def void_batch(self, product_id: int, import_id: int, *, grant: Grant, actor: str) -> int:
        """Void the import's keys still in stock; returns how many."""
        now = self.ctx.clock.now()
        return await self.ctx.write(_void, product_id, grant, actor, now, None, import_id)

    # ---------------------------------------------------------------- export

    async def unsold(self, product_id: int, *, grant: Grant) -> tuple[Product, int]:
        """The product and how many of its keys an export would hold (for the confirmation)."""
        return await self.ctx.read(_unsold, product_id, grant)

    async def export(
        self, product_id: int, *, grant: Grant, actor: str, request: int, max_bytes: int | None = None
    ) -> list[str]:
        """The product's unsold keys, decrypted, oldest first; audited. ``request``: the channel's number of
        the confirmation, honoured once per actor (``ExportAlreadySent`` for it, or for an older one).
        ``max_bytes``: the most the channel can send as one file (one key a line, UTF-8); a bigger export
        raises ``ExportTooLarge`` before the confirmation is claimed or anything audited."""
        now = self.ctx.clock.now()
        sealed = await self.ctx.write(_export, product_id, grant, actor, request, now, max_bytes)
        vault = self.ctx.vault
        return [vault.open_key(k.product_id, k.blind_index, k.ciphertext) for k in sealed]


# ---------------------------------------------------------------- transactions (on the database thread)


def _in_reach(uow: UnitOfWork, product_id: int, grant: Grant) -> Product:
    product = uow.repo.catalog.product(product_id)
    if product is None:
        raise ProductNotFound(product_id=product_id)
    if not grant.may(Power.STOCK) or not grant.covers(product.id, product.category_id):
        raise NotPermitted()
    if product.delivery_kind is not DeliveryKind.UNIQUE:
        raise StockNotKept(field="product")
    return product


def _find(uow: UnitOfWork, product_id: int, blind_index: bytes, grant: Grant) -> FoundKey:
    product = _in_reach(uow, product_id, grant)
    ref = uow.repo.keys.find_by_index(product_id, blind_index)
    if ref is None:
        raise KeyNotInStock(product_id=product_id)
    return FoundKey(product, ref.id, ref.status)


def _batch(uow: UnitOfWork, product_id: int, import_id: int, grant: Grant) -> Batch:
    product = _in_reach(uow, product_id, grant)
    counts = uow.repo.keys.count_by_import(product_id, import_id)
    if not counts:
        raise ImportBatchNotFound(product_id=product_id, import_id=import_id)
    return Batch(product, import_id, counts)


def _void(
    uow: UnitOfWork,
    product_id: int,
    grant: Grant,
    actor: str,
    now: datetime,
    key_id: int | None,
    import_id: int | None,
) -> int:
    r = uow.repo
    _in_reach(uow, product_id, grant)
    voided = r.keys.void_available(product_id, key_id=key_id, import_id=import_id)
    if voided:
        which = {"key": key_id} if key_id is not None else {"import_id": import_id}
        r.audit.add(now, actor, "keys_voided", product_id=product_id, count=voided, **which)
        r.cursors.bump(CATALOG_VERSION, now)  # other processes' stock counts reload
        uow.stock_moved = True
    uow.commit()
    return voided


def _unsold(uow: UnitOfWork, product_id: int, grant: Grant) -> tuple[Product, int]:
    if not grant.may(Power.EXPORT):
        raise NotPermitted()
    product = _in_reach(uow, product_id, grant)
    return product, uow.repo.keys.available(product_id)


def export_size(sealed: list[SealedKey]) -> int:
    """The bytes of an export's file (one key a line, UTF-8), from the ciphertexts' lengths."""
    return sum(Vault.plaintext_size(k.ciphertext) + 1 for k in sealed) or 1


def _export(
    uow: UnitOfWork,
    product_id: int,
    grant: Grant,
    actor: str,
    request: int,
    now: datetime,
    max_bytes: int | None,
) -> list[SealedKey]:
    if not grant.may(Power.EXPORT):
        raise NotPermitted()
    r = uow.repo
    _in_reach(uow, product_id, grant)
    sealed = r.keys.sealed_available(product_id)
    size = export_size(sealed)
    if max_bytes is not None and size > max_bytes:  # nothing claimed, nothing revealed: the write rolls back
        raise ExportTooLarge(
            count=len(sealed),
            product_id=product_id,
            size=f"{size / 2**20:.1f}",
            limit=f"{max_bytes / 2**20:.0f}",
        )
    if not r.cursors.claim(f"{EXPORT_CURSOR}{actor}"[:64], request, now):
        raise ExportAlreadySent()
    # a reveal: who saw which product's keys, and how many (the keys themselves never reach the trail)
    r.audit.add(now, actor, "keys_exported", product_id=product_id, count=len(sealed), request=request)
    uow.commit()
    return sealed
