"""All SQL lives here, one module per aggregate. Repositories take a connection inside a transaction,
never commit, and return dataclasses (``core.models``, or a small shape beside the repository), never rows.

Statements on the purchase path are built once, as ``_Q_*`` class attributes next to the method that runs
them: executing a prebuilt statement skips SQLAlchemy's construction and cache-key work, which on SQLite
cost as much as running the statement itself."""

from __future__ import annotations

import typing
from typing import Any

from sqlalchemy import Connection

from core.repositories.audit import AuditRepo
from core.repositories.broadcasts import BroadcastRepo
from core.repositories.catalog import CatalogRepo
from core.repositories.cursors import CursorRepo
from core.repositories.desk import DeskRepo
from core.repositories.distributors import DistributorRepo
from core.repositories.imports import ImportRepo
from core.repositories.job_claims import JobClaimRepo
from core.repositories.jobs import JobRunRepo
from core.repositories.keys import KeyRepo
from core.repositories.ledger import LedgerRepo
from core.repositories.monitoring import MonitoringRepo
from core.repositories.notices import PaymentNoticeRepo
from core.repositories.orders import OrderRepo
from core.repositories.outbox import OutboxRepo
from core.repositories.payments import PaymentRepo
from core.repositories.payouts import PayoutRepo
from core.repositories.referrals import ReferralRepo
from core.repositories.reminders import ReminderRepo
from core.repositories.reports import ReportRepo
from core.repositories.staff import StaffRepo
from core.repositories.stock_alerts import StockAlertRepo
from core.repositories.users import UserRepo
from core.repositories.wechat_inbound import WechatInboundRepo
from core.repositories.wechat_pay import WechatPayRepo
from core.repositories.wechat_qr_codes import WechatQrRepo
from core.repositories.wechat_tokens import WechatTokenRepo
from core.repositories.wechat_windows import WechatWindowRepo

__all__ = [
    "AuditRepo",
    "BroadcastRepo",
    "CatalogRepo",
    "CursorRepo",
    "DeskRepo",
    "DistributorRepo",
    "ImportRepo",
    "JobClaimRepo",
    "JobRunRepo",
    "KeyRepo",
    "LedgerRepo",
    "MonitoringRepo",
    "OrderRepo",
    "OutboxRepo",
    "PaymentNoticeRepo",
    "PaymentRepo",
    "PayoutRepo",
    "ReferralRepo",
    "ReminderRepo",
    "ReportRepo",
    "Repositories",
    "StaffRepo",
    "StockAlertRepo",
    "UserRepo",
    "WechatInboundRepo",
    "WechatPayRepo",
    "WechatQrRepo",
    "WechatTokenRepo",
    "WechatWindowRepo",
]


_REPOSITORIES: dict[str, type] = {}  # attribute -> repository class, from Repositories' annotations


class Repositories:
    """Every repository, bound to the one connection of a unit of work (``UnitOfWork.repo``). Each is
    made the first time the unit of work uses it (a transaction touches a few of them)."""

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
    staff: StaffRepo
    desk: DeskRepo
    reports: ReportRepo
    broadcasts: BroadcastRepo
    referrals: ReferralRepo
    ledger: LedgerRepo
    payouts: PayoutRepo
    distributors: DistributorRepo
    jobs: JobRunRepo
    reminders: ReminderRepo
    claims: JobClaimRepo
    stock_alerts: StockAlertRepo
    monitoring: MonitoringRepo
    wechat_inbound: WechatInboundRepo
    wechat_pay: WechatPayRepo
    wechat_tokens: WechatTokenRepo
    wechat_qr_codes: WechatQrRepo
    wechat_windows: WechatWindowRepo

    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self._dialect = conn, dialect

    def __getattr__(self, name: str) -> Any:  # only for an attribute not set yet: a repository's first use
        cls = _REPOSITORIES.get(name)
        if cls is None:
            raise AttributeError(name)
        repo = cls(self.conn, self._dialect)
        setattr(self, name, repo)
        return repo

    def flush(self) -> None:
        """Write what repositories hold back until commit (audit rows)."""
        audit = self.__dict__.get("audit")
        if audit is not None:
            audit.flush()


_REPOSITORIES.update(
    (name, cls) for name, cls in typing.get_type_hints(Repositories).items() if name != "conn"
)
