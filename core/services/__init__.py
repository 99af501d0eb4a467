"""Application services: each public method is one transaction through a unit of work."""

from __future__ import annotations

from core.context import Context


class Services:
    """The services a channel calls, as one object to hand to handlers via workflow data."""

    def __init__(self, ctx: Context) -> None:
        from core.services.audit import AuditService
        from core.services.balance_payments import BalancePaymentService
        from core.services.broadcasts import BroadcastService
        from core.services.buyers import BuyerDesk
        from core.services.catalog import CatalogService
        from core.services.checkout import CheckoutService
        from core.services.cursors import CursorService
        from core.services.daily_summary import DailySummaryService
        from core.services.distributors import DistributorService
        from core.services.drafts import DraftService
        from core.services.jobs import JobRunService
        from core.services.keys import KeysService
        from core.services.ledger import LedgerService
        from core.services.monitoring import MonitoringService
        from core.services.order_desk import OrderDesk
        from core.services.orders import OrderService
        from core.services.outbox import OutboxService
        from core.services.payments import PaymentService
        from core.services.payout_run import PayoutRunService
        from core.services.payouts import PayoutService
        from core.services.referrals import ReferralService
        from core.services.refunds import RefundService
        from core.services.reminders import ReminderService
        from core.services.reports import ReportService
        from core.services.sharing import SharingService
        from core.services.staff import StaffService
        from core.services.stock import StockService
        from core.services.stock_alerts import StockAlertService
        from core.services.users import UserService
        from core.services.wechat_inbound import WechatInboundService
        from core.services.wechat_pay import WechatPayOrderService
        from core.services.wechat_qr_codes import WechatQrService
        from core.services.wechat_tokens import WechatTokenService
        from core.services.wechat_windows import WechatWindowService

        self.ctx = ctx
        self.catalog = CatalogService(ctx)
        self.checkout = CheckoutService(ctx)
        self.users = UserService(ctx)
        self.stock = StockService(ctx)
        self.keys = KeysService(ctx)
        self.payments = PaymentService(ctx)
        self.refunds = RefundService(ctx)
        self.orders = OrderService(ctx)
        self.outbox = OutboxService(ctx)
        self.cursors = CursorService(ctx)
        self.staff = StaffService(ctx)
        self.order_desk = OrderDesk(ctx, self.orders, self.refunds, self.payments)
        self.buyers = BuyerDesk(ctx)
        self.reports = ReportService(ctx)
        self.audit = AuditService(ctx)
        self.broadcasts = BroadcastService(ctx)
        self.drafts = DraftService(ctx)
        self.referrals = ReferralService(ctx)
        self.ledger = LedgerService(ctx)
        self.balance = BalancePaymentService(ctx)
        self.sharing = SharingService(ctx, self.catalog, self.users, self.referrals)
        self.payouts = PayoutService(ctx)
        self.distributors = DistributorService(ctx)
        self.jobs = JobRunService(ctx)
        self.reminders = ReminderService(ctx)
        # The admins' periodic jobs (scheduler.jobs): payout run, stock alerts, daily summary.
        self.payout_run = PayoutRunService(ctx)
        self.stock_alerts = StockAlertService(ctx)
        self.daily_summary = DailySummaryService(ctx)
        self.monitoring = MonitoringService(ctx)
        self.wechat_inbound = WechatInboundService(ctx)
        self.wechat_pay = WechatPayOrderService(ctx)
        self.wechat_tokens = WechatTokenService(ctx)
        self.wechat_qr_codes = WechatQrService(ctx)
        self.wechat_windows = WechatWindowService(ctx)
