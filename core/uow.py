"""The unit of work: one transaction on a database thread, rolled back unless ``commit()`` was called.

A service's transaction is a plain function ``fn(uow, *args)``; ``Context.write`` / ``Context.read`` run
it in one trip to a database thread (``core.db``). Repositories never commit. Services ``emit`` domain
events into it; ``commit()`` first runs every handler registered for them (``core.events``), in the order
they were emitted, inside this transaction, then commits. A handler that raises makes ``commit()`` raise
before anything is committed, so the whole transaction rolls back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection

from core.events import Event, EventHandlers
from core.repositories import Repositories

# Handlers may emit events of their own; a chain longer than this is a loop between handlers.
MAX_EVENTS_PER_TRANSACTION = 10_000

_T = TypeVar("_T")


class UnitOfWork:
    """What a transaction function gets: the repositories on its connection, ``emit`` and ``commit``."""

    def __init__(self, conn: Connection, *, write: bool = True, events: EventHandlers | None = None) -> None:
        self.conn = conn
        self.write = write
        self.events = events if events is not None else EventHandlers()
        self._repo = Repositories(conn, conn.dialect.name)
        self._emitted: list[Event] = []
        self._failed = False  # an event handler raised: this transaction must not commit
        self._committed = False
        # Set by a transaction that moved stock other than by reserving it at checkout (a release, a
        # restock, an import): the in-memory catalog re-reads its counts once this commits.
        self.stock_moved = False

    @property
    def committed(self) -> bool:
        return self._committed

    @property
    def repo(self) -> Repositories:
        """The repositories on this transaction's connection; refused once it committed (a statement after
        COMMIT would run outside the transaction on SQLite and be rolled back on PostgreSQL)."""
        if self._committed:
            raise RuntimeError("this unit of work has committed: its repositories are closed")
        return self._repo

    def emit(self, event: Event) -> None:
        """Something happened in this transaction: its handlers run before COMMIT."""
        if self._committed:
            raise RuntimeError("an event emitted outside its transaction would run no handler")
        self._emitted.append(event)

    def _dispatch(self) -> None:
        done = 0
        while self._emitted:
            event = self._emitted.pop(0)
            done += 1
            if done > MAX_EVENTS_PER_TRANSACTION:
                raise RuntimeError("event handlers keep emitting events: a loop between handlers?")
            for handler in self.events.for_event(event):
                try:
                    handler(self, event)
                except BaseException:
                    self._failed = True
                    raise

    def commit(self) -> None:
        if self._committed:
            raise RuntimeError("this unit of work has already committed")
        if self._failed:
            raise RuntimeError("an event handler failed in this transaction: it can only roll back")
        self._dispatch()
        self._repo.flush()
        self.conn.commit()
        self._committed = True


def run_unit(
    conn: Connection,
    events: EventHandlers,
    write: bool,
    on_stock_moved: Callable[[], None] | None,
    fn: Callable[..., _T],
    args: tuple[Any, ...],
) -> _T:
    """The job ``core.db`` runs on its thread: ``fn(uow, *args)`` (the thread rolls back what it left)."""
    uow = UnitOfWork(conn, write=write, events=events)
    out = fn(uow, *args)
    if uow.stock_moved and uow.committed and on_stock_moved is not None:
        on_stock_moved()
    return out
