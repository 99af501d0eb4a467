"""All SQL lives here, one module per aggregate. Repositories take a connection inside a transaction,
never commit, and return dataclasses (``core.models``, or a small shape beside the repository), never rows.

Statements on the purchase path are built once, as ``_Q_*`` class attributes next to the method that runs
them: executing a prebuilt statement skips SQLAlchemy's construction and cache-key work, which on SQLite
cost as much as running the statement itself."""

from __future__ import annotations

from functools import cached_property

from sqlalchemy import Connection

from core.repositories.audit import AuditRepo
from core.repositories.catalog import CatalogRepo
from core.repositories.cursors import CursorRepo
from core.repositories.imports import ImportRepo
from core.repositories.keys import KeyRepo
from core.repositories.notices import PaymentNoticeRepo
from core.repositories.orders import OrderRepo
from core.repositories.outbox import OutboxRepo
from core.repositories.payments import PaymentRepo
from core.repositories.users import UserRepo

__all__ = [
    "AuditRepo",
    "CatalogRepo",
    "CursorRepo",
    "ImportRepo",
    "KeyRepo",
    "OrderRepo",
    "OutboxRepo",
    "PaymentNoticeRepo",
    "PaymentRepo",
    "Repositories",
    "UserRepo",
]


class Repositories:
    """Every repository, bound to the one connection of a unit of work (``UnitOfWork.repo``). Each is
    made the first time the unit of work uses it: a transaction touches a few of them."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    @cached_property
    def users(self) -> UserRepo:
        return UserRepo(self.conn, self.dialect)

    @cached_property
    def catalog(self) -> CatalogRepo:
        return CatalogRepo(self.conn, self.dialect)

    @cached_property
    def keys(self) -> KeyRepo:
        return KeyRepo(self.conn, self.dialect)

    @cached_property
    def orders(self) -> OrderRepo:
        return OrderRepo(self.conn, self.dialect)

    @cached_property
    def payments(self) -> PaymentRepo:
        return PaymentRepo(self.conn, self.dialect)

    @cached_property
    def notices(self) -> PaymentNoticeRepo:
        return PaymentNoticeRepo(self.conn, self.dialect)

    @cached_property
    def audit(self) -> AuditRepo:
        return AuditRepo(self.conn, self.dialect)

    @cached_property
    def outbox(self) -> OutboxRepo:
        return OutboxRepo(self.conn, self.dialect)

    @cached_property
    def imports(self) -> ImportRepo:
        return ImportRepo(self.conn, self.dialect)

    @cached_property
    def cursors(self) -> CursorRepo:
        return CursorRepo(self.conn, self.dialect)

    def flush(self) -> None:
        """Write what repositories hold back until commit (audit rows)."""
        if "audit" in self.__dict__:
            self.audit.flush()
