"""Stock: importing keys, shared keys, stock levels and re-encryption under a new vault key."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from time import monotonic
from typing import Any, BinaryIO

from core import importer
from core.context import Context
from core.errors import ImportAbandoned, ImportIncomplete, InvalidInput, ProductNotFound, VaultError
from core.models import DeliveryKind, ImportReport, KeyStatus, StockLevel
from core.vault import normalize_key

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
        """
        now = self.ctx.clock.now()
        async with self.ctx.uow() as uow:
            product = await uow.repo.catalog.product(product_id)
            if product is None:
                raise ProductNotFound(product_id=product_id)
            if product.delivery_kind is not DeliveryKind.UNIQUE:
                raise InvalidInput(
                    "only unique-key products take imported stock (set a shared key instead)", field="product"
                )
            import_id = await uow.repo.imports.start(product_id, actor, now)
            await uow.commit()

        report = ImportReport(product_id=product_id, import_id=import_id)
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
            async with self.ctx.uow() as uow:
                r = uow.repo
                if not await r.imports.lock_running(import_id):
                    raise ImportAbandoned(import_id=import_id)
                staged = await r.imports.staged_count(import_id)
                if staged != valid:
                    raise ImportIncomplete(import_id=import_id, expected=valid, staged=staged)
                done = self.ctx.clock.now()
                report.added = await r.imports.publish(import_id, product_id, done)
                report.duplicates = valid - report.added
                await r.imports.finish(
                    import_id,
                    "done",
                    done,
                    lines=report.lines,
                    added=report.added,
                    duplicates=report.duplicates,
                    invalid=report.invalid,
                )
                await r.audit.add(
                    done,
                    actor,
                    "keys_imported",
                    product_id=product_id,
                    import_id=import_id,
                    added=report.added,
                    duplicates=report.duplicates,
                    invalid=report.invalid,
                )
                await uow.commit()
        except BaseException:
            await asyncio.shield(self._discard(import_id))
            raise
        if progress:
            progress(report)
        return report

    async def _stage(
        self, import_id: int, kid: str, batch: list[tuple[bytes, bytes]], report: ImportReport
    ) -> None:
        async with self.ctx.uow() as uow:
            if not await uow.repo.imports.heartbeat(import_id, report.lines):
                raise ImportAbandoned(import_id=import_id)
            await uow.repo.imports.stage(import_id, kid, batch)
            await uow.commit()

    async def _beat(self, import_id: int, lines: int) -> None:
        async with self.ctx.uow() as uow:
            if not await uow.repo.imports.heartbeat(import_id, lines):
                raise ImportAbandoned(import_id=import_id)
            await uow.commit()

    async def _discard(self, import_id: int) -> None:
        try:
            async with self.ctx.uow() as uow:
                removed = await uow.repo.imports.discard(import_id)
                await uow.repo.imports.finish(import_id, "failed", self.ctx.clock.now())
                await uow.commit()
            log.warning("import %s failed or was interrupted; %s staged keys removed", import_id, removed)
        except Exception:
            log.exception("import %s: could not remove staged keys; the sweeper will", import_id)

    async def abandon_stale_imports(self) -> int:
        """Delete keys staged by imports whose process died: no heartbeat for STALE_IMPORT_AFTER by the
        database's clock. Each is re-checked as it is abandoned, so one that beat meanwhile is kept."""
        async with self.ctx.uow(write=False) as uow:
            stale = await uow.repo.imports.stale(STALE_IMPORT_AFTER)
        abandoned = 0
        for import_id in stale:
            async with self.ctx.uow() as uow:
                removed = await uow.repo.imports.abandon(import_id, STALE_IMPORT_AFTER, self.ctx.clock.now())
                await uow.commit()
            if removed >= 0:
                abandoned += 1
                log.warning("import %s was abandoned; %s staged keys removed", import_id, removed)
        return abandoned

    async def set_shared_key(self, product_id: int, key: str, *, actor: str = "system") -> int:
        """Give a shared-key product its key (replacing the previous one, which orders keep)."""
        key = normalize_key(key)
        if not 1 <= len(key) <= importer.MAX_KEY_CHARS:
            raise InvalidInput(f"a key must be 1 to {importer.MAX_KEY_CHARS} characters", field="key")
        now = self.ctx.clock.now()
        vault = self.ctx.vault
        async with self.ctx.uow() as uow:
            r = uow.repo
            product = await r.catalog.product(product_id)
            if product is None:
                raise ProductNotFound(product_id=product_id)
            if product.delivery_kind is not DeliveryKind.SHARED:
                raise InvalidInput("this product is not a shared-key product", field="product")
            bidx, blob = vault.seal_key(product_id, key)
            existing = await r.keys.find_by_index(product_id, bidx)
            if existing is not None and existing.status is KeyStatus.SHARED:
                return existing.id
            if existing is not None:
                raise InvalidInput("this key was used for this product before", field="key")
            await r.keys.retire_shared(product_id)
            key_id = await r.keys.add_one(
                product_id=product_id,
                status=KeyStatus.SHARED,
                kid=vault.current_kid,
                blind_index=bidx,
                ciphertext=blob,
                created_at=now,
            )
            await r.audit.add(now, actor, "shared_key_set", product_id=product_id, key=key_id)
            await uow.commit()
        return key_id

    async def levels(self, product_id: int | None = None) -> list[StockLevel]:
        async with self.ctx.uow(write=False) as uow:
            r = uow.repo
            if product_id is None:
                products = await r.catalog.products(active_only=False)
            else:
                one = await r.catalog.product(product_id)
                products = [one] if one is not None else []
            counts = {(c.product_id, c.status): c.count for c in await r.keys.count_by_status(product_id)}
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
        async with self.ctx.uow(write=False) as uow:
            return await uow.repo.keys.available(product_id)

    async def rotate_vault(
        self, *, batch_size: int = 500, progress: Callable[[int, int], Any] | None = None
    ) -> int:
        """Re-encrypt every key not yet under the newest vault key. Each batch is its own transaction
        and every row update is guarded by the key id it was read with, so an interrupted rotation is
        simply run again. Returns how many keys were re-encrypted."""
        vault = self.ctx.vault
        new = vault.current_kid
        async with self.ctx.uow(write=False) as uow:
            total = await uow.repo.keys.count_not_under(new)
        done, after = 0, 0
        if progress:
            progress(done, total)
        while True:
            async with self.ctx.uow() as uow:
                rows = await uow.repo.keys.batch_not_under(new, after, batch_size)
                if not rows:
                    break
                for row in rows:
                    if row.kid not in vault.kids:
                        raise VaultError(
                            f"key {row.id} is under vault key {row.kid!r}, which is not configured"
                        )
                    plain = vault.open_key(row.product_id, row.blind_index, row.ciphertext)
                    blob = vault.encrypt(plain, vault.associated_data(row.product_id, row.blind_index))
                    done += await uow.repo.keys.reseal(row.id, row.kid, new, blob)
                after = rows[-1].id
                await uow.commit()
            if progress:
                progress(done, total)
        if done:
            async with self.ctx.uow() as uow:
                await uow.repo.audit.add(self.ctx.clock.now(), "system", "vault_rotated", kid=new, keys=done)
                await uow.commit()
        return done
