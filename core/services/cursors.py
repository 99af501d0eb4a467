"""Named positions that must survive restarts, e.g. how far an external ledger was reconciled."""

from __future__ import annotations

from datetime import datetime

from core.context import Context, UnitOfWork


class CursorService:
    """Named positions that survive restarts, moved only forward."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def get(self, name: str) -> int:
        return await self.ctx.read(_get, name)

    async def create_once(self, name: str) -> bool:
        """Create the cursor ``name`` unless it exists: True for the one caller that created it (of two at
        once, one wins). A way to do a thing once per name, e.g. take a waiting upload once."""
        return await self.ctx.write(_create_once, name, self.ctx.clock.now())

    async def advance(self, name: str, position: int) -> None:
        await self.ctx.write(_advance, name, position, self.ctx.clock.now())


def _get(uow: UnitOfWork, name: str) -> int:
    return uow.repo.cursors.get(name) or 0


def _create_once(uow: UnitOfWork, name: str, now: datetime) -> bool:
    created = uow.repo.cursors.create_once(name, now)
    uow.commit()
    return created


def _advance(uow: UnitOfWork, name: str, position: int, now: datetime) -> None:
    uow.repo.cursors.advance(name, position, now)
    uow.commit()
