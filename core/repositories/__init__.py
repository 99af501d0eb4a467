"""All SQL lives here, one module per aggregate. Repositories take a connection inside a transaction,
never commit, and return dataclasses (``core.models``, or a small shape beside the repository), never rows.

Statements on the purchase path are built once, as ``_Q_*`` class attributes next to the method that runs
them: executing a prebuilt statement skips SQLAlchemy's construction and cache-key work, which on SQLite
cost as much as running the statement itself."""

from __future__ import annotations

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
    """Every repository, bound to the one connection of a unit of work (``UnitOfWork.repo``)."""

    conn: Connection
    users: UserRepo
    catalog: CatalogRepo
    keys: KeyRepo
    orders: OrderRepo
    payments: PaymentRepo
    notices: PaymentNoticeRepo
    audit: AuditRepo
    outbox: OutboxRepo
    imports: ImportRepo
    cursors: CursorRepo

    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn = conn
        self.users = UserRepo(conn, dialect)
        self.catalog = CatalogRepo(conn, dialect)
        self.keys = KeyRepo(conn, dialect)
        self.orders = OrderRepo(conn, dialect)
        self.payments = PaymentRepo(conn, dialect)
        self.audit = AuditRepo(conn, dialect)
        self.outbox = OutboxRepo(conn, dialect)
        self.imports = ImportRepo(conn, dialect)
        self.cursors = CursorRepo(conn, dialect)
        self.notices = PaymentNoticeRepo(conn, dialect)

    def flush(self) -> None:
        """Write what repositories hold back until commit (audit rows)."""
        self.audit.flush()
