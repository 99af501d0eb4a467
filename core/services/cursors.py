"""Named positions that must survive restarts, e.g. how far an external ledger was reconciled."""

from __future__ import annotations

from core.context import Context


class CursorService:
    """Named positions that survive restarts, moved only forward."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def get(self, name: str) -> int:
        async with self.ctx.uow(write=False) as uow:
            return await uow.repo.cursors.get(name) or 0

    async def advance(self, name: str, position: int) -> None:
        async with self.ctx.uow() as uow:
            await uow.repo.cursors.advance(name, position, self.ctx.clock.now())
            await uow.commit()
