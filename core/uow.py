"""The unit of work: one transaction, rolled back unless ``commit()`` was called.

Repositories never commit. Services ``emit`` domain events into it; ``commit()`` first runs every handler
registered for them (``core.events``), in the order they were emitted, inside this transaction, then
commits. A handler that raises makes ``commit()`` raise before anything is committed, so the whole
transaction rolls back."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection

from core.db import WRITE_OPTION, Database
from core.events import Event, EventHandlers
from core.repositories import Repositories

# Handlers may emit events of their own; a chain longer than this is a loop between handlers.
MAX_EVENTS_PER_TRANSACTION = 10_000


class UnitOfWork:
    """``async with UnitOfWork(db) as uow: ...; await uow.commit()``.

    ``write=True`` (the default) opens a write transaction: ``BEGIN IMMEDIATE`` on SQLite, behind the
    process-wide writer lock. Read-only work should pass ``write=False`` so it never waits for writers.
    """

    def __init__(self, db: Database, *, write: bool = True, events: EventHandlers | None = None) -> None:
        self.db = db
        self.write = write
        self.events = events if events is not None else EventHandlers()
        self._emitted: list[Event] = []
        self._failed = False  # an event handler raised: this transaction must not commit
        self._conn: AsyncConnection | None = None
        self._locked = False
        self._committed = False
        self._repo: Repositories | None = None

    @property
    def repo(self) -> Repositories:
        assert self._repo is not None, "unit of work used outside 'async with'"
        return self._repo

    async def __aenter__(self) -> Self:
        lock = self.db.write_lock if self.write else None
        if lock is not None:
            await lock.acquire()
            self._locked = True
        try:
            conn = await self.db.engine.connect()
            try:
                if self.write:
                    await conn.execution_options(**{WRITE_OPTION: True})
                await conn.begin()
            except BaseException:
                await conn.close()
                raise
        except BaseException:
            self._release()
            raise
        self._conn = conn
        self._repo = Repositories(conn, self.db.dialect)
        return self

    def emit(self, event: Event) -> None:
        """Something happened in this transaction: its handlers run before COMMIT."""
        if self._conn is None or self._committed:
            raise RuntimeError("an event emitted outside its transaction would run no handler")
        self._emitted.append(event)

    async def _dispatch(self) -> None:
        done = 0
        while self._emitted:
            event = self._emitted.pop(0)
            done += 1
            if done > MAX_EVENTS_PER_TRANSACTION:
                raise RuntimeError("event handlers keep emitting events: a loop between handlers?")
            for handler in self.events.for_event(event):
                try:
                    await handler(self, event)
                except BaseException:
                    self._failed = True
                    raise

    async def commit(self) -> None:
        assert self._conn is not None
        if self._failed:
            raise RuntimeError("an event handler failed in this transaction: it can only roll back")
        await self._dispatch()
        await self.repo.flush()
        await self._conn.commit()
        self._committed = True

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                try:
                    if not self._committed:
                        await conn.rollback()
                finally:
                    await conn.close()
        finally:
            self._release()
            self._repo = None
            self._emitted.clear()

    def _release(self) -> None:
        if self._locked and self.db.write_lock is not None:
            self.db.write_lock.release()
            self._locked = False
