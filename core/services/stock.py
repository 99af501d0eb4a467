"""Stock: importing keys, shared keys, stock levels and re-encryption under a new vault key."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from time import monotonic
from typing import Any, BinaryIO

from core import importer
from core.catalog_cache import CATALOG_VERSION
from core.context import Context, UnitOfWork
from core.errors import (
    ImportAbandoned,
    ImportIncomplete,
    InvalidInput,
    NotPermitted,
    ProductNotFound,
    StockNotKept,
    VaultError,
)
from core.models import DeliveryKind, ImportReport, KeyStatus, Product, StockLevel
from core.roles import Grant
from core.vault import Vault, normalize_key

log = logging.getLogger(__name__)

IMPORT_BATCH = 10000  # keys per staging transaction
HEARTBEAT_EVERY = 30.0  # seconds: an import beats at least this often while it reads its stream
STALE_IMPORT_AFTER = timedelta(minutes=10)  # no heartbeat for this long (database clock): abandoned


class StockService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def import_keys(
        self,
        product_id: int,
        stream: BinaryIO,
        *,
        fmt: str = "txt",
        column: str | int | None = None,
        actor: str = "system",
        progress: Callable[[ImportReport], Any] | None = None,
        batch_size: int = IMPORT_BATCH,
        grant: Grant | None = None,
        samples: int = 100,
    ) -> ImportReport:
        """Import keys into a unique-key product's stock, all or nothing.

        Encrypted keys are written in batches (short transactions, so the shop keeps selling meanwhile)
        to a staging table buyers never see; one final statement moves them into stock, skipping
        duplicates, so stock changes all at once. If anything fails or the import is interrupted, the
        staged rows are deleted; if the process dies, ``abandon_stale_imports`` (run by the sweeper and at
        start-up) deletes them later.

        Liveness: the import beats (database time) with every batch and at least every
        ``HEARTBEAT_EVERY`` while its stream is read, however slowly lines arrive. Should it be swept
        anyway, it fails with ``ImportAbandoned`` at its next beat or when publishing; publishing also
        checks that every key it staged is still staged (``ImportIncomplete``). Either way nothing is
        published: an import never reports success with keys missing.

        ``grant``: the staff member's, when one asked (a product beyond their scope is refused);
        ``samples``: how many invalid lines the report keeps with their numbers.
        """
        now = self.ctx.clock.now()
        import_id = await self.ctx.write(_start_import, product_id, actor, now, grant)

        report = ImportReport(product_id=product_id, import_id=import_id, sample_limit=samples)
        vault = self.ctx.vault
        try:
            batch: list[tuple[bytes, bytes]] = []
            valid = 0
            next_beat = monotonic() + HEARTBEAT_EVERY
            for parsed in importer.parse(stream, fmt, column):
                report.lines = parsed.line
                if parsed.key is None:
                    report.reject(parsed.line, parsed.reason or "invalid")
                else:
                    batch.append(vault.seal_key(product_id, parsed.key))
                    valid += 1
                    if len(batch) >= batch_size:
                        await self._stage(import_id, vault.current_kid, batch, report)
                        batch = []
                        next_beat = monotonic() + HEARTBEAT_EVERY
                        if progress:
                            progress(report)
                        continue
                if monotonic() >= next_beat:  # a slow stream: beat between batches
                    await self._beat(import_id, report.lines)
                    next_beat = monotonic() + HEARTBEAT_EVERY
            if batch:
                await self._stage(import_id, vault.current_kid, batch, report)
            await self.ctx.write(self._publish, import_id, product_id, valid, actor, report)
        except BaseException:
            await asyncio.shield(self._discard(import_id))
            raise
        if progress:
            progress(report)
        return report

    def _publish(
        self, uow: UnitOfWork, import_id: int, product_id: int, valid: int, actor: str, report: ImportReport
    ) -> None:
        r = uow.repo
        if not r.imports.lock_running(import_id):
            raise ImportAbandoned(import_id=import_id)
        if not r.imports.lock_product(product_id):
            raise ProductNotFound(product_id=product_id)
        staged = r.imports.staged_count(import_id)
        if staged != valid:
            raise ImportIncomplete(import_id=import_id, expected=valid, staged=staged)
        done = self.ctx.clock.now()
        report.added = r.imports.publish(import_id, product_id, done)
        report.duplicates = valid - report.added
        r.imports.finish(
            import_id,
            "done",
            done,
            lines=report.lines,
            added=report.added,
            duplicates=report.duplicates,
            invalid=report.invalid,
        )
        r.audit.add(
            done,
            actor,
            "keys_imported",
            product_id=product_id,
            import_id=import_id,
            added=report.added,
            duplicates=report.duplicates,
            invalid=report.invalid,
        )
        r.cursors.bump(CATALOG_VERSION, done)  # other processes' catalogs reload
        uow.stock_moved = True
        uow.commit()

    async def _stage(
        self, import_id: int, kid: str, batch: list[tuple[bytes, bytes]], report: ImportReport
    ) -> None:
        await self.ctx.write(_stage, import_id, kid, batch, report.lines)

    async def _beat(self, import_id: int, lines: int) -> None:
        await self.ctx.write(_stage, import_id, "", [], lines)

    async def _discard(self, import_id: int) -> None:
        try:
            removed = await self.ctx.write(_discard, import_id, self.ctx.clock.now())
            log.warning("import %s failed or was interrupted; %s staged keys removed", import_id, removed)
        except Exception:
            log.exception("import %s: could not remove staged keys; the sweeper will", import_id)

    async def abandon_stale_imports(self) -> int:
        """Delete keys staged by imports whose process died: no heartbeat for STALE_IMPORT_AFTER by the
        database's clock. Each is re-checked as it is abandoned, so one that beat meanwhile is kept."""
        stale = await self.ctx.read(_stale_imports)
        abandoned = 0
        for import_id in stale:
            removed = await self.ctx.write(_abandon, import_id, self.ctx.clock.now())
            if removed >= 0:
                abandoned += 1
                log.warning("import %s was abandoned; %s staged keys removed", import_id, removed)
        return abandoned

    async def set_shared_key(self, product_id: int, key: str, *, actor: str = "system") -> int:
        """Give a shared-key product its key (replacing the previous one, which orders keep)."""
        key = normalize_key(key)
        if not 1 <= len(key) <= importer.MAX_KEY_CHARS:
            raise InvalidInput(f"a key must be 1 to {importer.MAX_KEY_CHARS} characters", field="key")
        return await self.ctx.write(self._set_shared_key, product_id, key, actor, self.ctx.clock.now())

    def _set_shared_key(self, uow: UnitOfWork, product_id: int, key: str, actor: str, now: datetime) -> int:
        key_id = put_shared_key(uow, self.ctx.vault, product_id, key, actor, now)
        uow.commit()
        return key_id

    async def levels(self, product_id: int | None = None) -> list[StockLevel]:
        products, counts = await self.ctx.read(_levels, product_id)
        out = []
        for p in products:
            c = {s: counts.get((p.id, s), 0) for s in KeyStatus}
            out.append(
                StockLevel(
                    product_id=p.id,
                    product_name=p.name,
                    delivery_kind=p.delivery_kind,
                    available=c[KeyStatus.AVAILABLE],
                    reserved=c[KeyStatus.RESERVED],
                    sold=c[KeyStatus.SOLD],
                    void=c[KeyStatus.VOID],
                    low_stock_threshold=p.low_stock_threshold,
                )
            )
        if product_id is not None and not out:
            raise ProductNotFound(product_id=product_id)
        return out

    async def available(self, product_id: int) -> int:
        return await self.ctx.read(_available, product_id)

    async def rotate_vault(
        self, *, batch_size: int = 500, progress: Callable[[int, int], Any] | None = None
    ) -> int:
        """Re-encrypt every key not yet under the newest vault key. Each batch is its own transaction
        and every row update is guarded by the key id it was read with, so an interrupted rotation is
        simply run again. Returns how many keys were re-encrypted."""
        vault = self.ctx.vault
        new = vault.current_kid
        total = await self.ctx.read(_count_not_under, new)
        done, after = 0, 0
        if progress:
            progress(done, total)
        while True:
            resealed, last = await self.ctx.write(self._reseal_batch, after, batch_size)
            if last is None:
                break
            done += resealed
            after = last
            if progress:
                progress(done, total)
        if done:
            await self.ctx.write(_audit_rotation, self.ctx.clock.now(), new, done)
        return done

    def _reseal_batch(self, uow: UnitOfWork, after: int, batch_size: int) -> tuple[int, int | None]:
        """Re-encrypt the next batch after key ``after``: (how many, the last id seen or None when done)."""
        vault = self.ctx.vault
        new = vault.current_kid
        rows = uow.repo.keys.batch_not_under(new, after, batch_size)
        if not rows:
            return 0, None
        done = 0
        for row in rows:
            if row.kid not in vault.kids:
                raise VaultError(f"key {row.id} is under vault key {row.kid!r}, which is not configured")
            plain = vault.open_key(row.product_id, row.blind_index, row.ciphertext)
            blob = vault.encrypt(plain, vault.associated_data(row.product_id, row.blind_index))
            done += uow.repo.keys.reseal(row.id, row.kid, new, blob)
        uow.commit()
        return done, rows[-1].id


# ---------------------------------------------------------------- transactions (on the database thread)


def _start_import(uow: UnitOfWork, product_id: int, actor: str, now: datetime, grant: Grant | None) -> int:
    product = uow.repo.catalog.product(product_id)
    if product is None:
        raise ProductNotFound(product_id=product_id)
    if grant is not None and not grant.covers(product.id, product.category_id):
        raise NotPermitted()
    if product.delivery_kind is not DeliveryKind.UNIQUE:
        raise StockNotKept(field="product")
    import_id = uow.repo.imports.start(product_id, actor, now)
    uow.commit()
    return import_id


def _stage(uow: UnitOfWork, import_id: int, kid: str, batch: list[tuple[bytes, bytes]], lines: int) -> None:
    """A heartbeat, and the batch (if any) staged, in one transaction."""
    if not uow.repo.imports.heartbeat(import_id, lines):
        raise ImportAbandoned(import_id=import_id)
    if batch:
        uow.repo.imports.stage(import_id, kid, batch)
    uow.commit()


def _discard(uow: UnitOfWork, import_id: int, now: datetime) -> int:
    removed = uow.repo.imports.discard(import_id)
    uow.repo.imports.finish(import_id, "failed", now)
    uow.commit()
    return removed


def _stale_imports(uow: UnitOfWork) -> list[int]:
    return uow.repo.imports.stale(STALE_IMPORT_AFTER)


def _abandon(uow: UnitOfWork, import_id: int, now: datetime) -> int:
    removed = uow.repo.imports.abandon(import_id, STALE_IMPORT_AFTER, now)
    uow.commit()
    return removed


def _levels(
    uow: UnitOfWork, product_id: int | None
) -> tuple[list[Product], dict[tuple[int, KeyStatus], int]]:
    r = uow.repo
    if product_id is None:
        products = r.catalog.products(active_only=False)
    else:
        one = r.catalog.product(product_id)
        products = [one] if one is not None else []
    return products, {(c.product_id, c.status): c.count for c in r.keys.count_by_status(product_id)}


def _available(uow: UnitOfWork, product_id: int) -> int:
    return uow.repo.keys.available(product_id)


def _count_not_under(uow: UnitOfWork, kid: str) -> int:
    return uow.repo.keys.count_not_under(kid)


def _audit_rotation(uow: UnitOfWork, now: datetime, kid: str, keys: int) -> None:
    uow.repo.audit.add(now, "system", "vault_rotated", kid=kid, keys=keys)
    uow.commit()


def put_shared_key(
    uow: UnitOfWork, vault: Vault, product_id: int, key: str, actor: str, now: datetime
) -> int:
    """Give a shared-key product its (normalized) key inside the caller's transaction (which commits): the
    previous key is retired (orders keep it); the same key again changes nothing."""
    r = uow.repo
    product = r.catalog.product(product_id)
    if product is None:
        raise ProductNotFound(product_id=product_id)
    if product.delivery_kind is not DeliveryKind.SHARED:
        raise InvalidInput("this product is not a shared-key product", field="product")
    bidx, blob = vault.seal_key(product_id, key)
    existing = r.keys.find_by_index(product_id, bidx)
    if existing is not None and existing.status is KeyStatus.SHARED:
        return existing.id
    if existing is not None:
        raise InvalidInput("this key was used for this product before", field="key")
    r.keys.retire_shared(product_id)
    key_id = r.keys.add_one(
        product_id=product_id,
        status=KeyStatus.SHARED,
        kid=vault.current_kid,
        blind_index=bidx,
        ciphertext=blob,
        created_at=now,
    )
    r.audit.add(now, actor, "shared_key_set", product_id=product_id, key=key_id)
    r.cursors.bump(CATALOG_VERSION, now)
    uow.stock_moved = True
    return key_id
