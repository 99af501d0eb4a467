"""The WeChat channel as the composition root builds it from WECHAT_* and WECHATPAY_* settings: the API
client (one per process, its access_token shared with every other instance through the shop's database),
the WeChat Pay client, and the channel's routes on the process's aiohttp application."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from cryptography import x509

from bot.i18n import compile_catalogs
from bot.settings import Settings, SettingsError
from core.messages import RefundDue
from core.services import Services
from core.services.outbox import OutboxMessage
from handlers.wechat.api import WechatApi
from handlers.wechat.callback import WechatConfig
from handlers.wechat.channel import PayWiring, add_channel_routes
from handlers.wechat.outbox import Alerts, PayBackCall, WechatSender
from handlers.wechat.paid import CURRENCY, Merchant, WechatPayReconciler
from handlers.wechat.paid import pay_back as pay_back_charge
from handlers.wechat.pay import PayConfig, WechatPay
from handlers.wechat.templates import ReminderTemplate, TemplateApi, Templates
from handlers.wechat.texts import Texts
from handlers.wechat.tokens import TokenStore
from handlers.wechat.web.routes import PagesConfig

log = logging.getLogger(__name__)


class WechatNotConfigured(Exception):
    """WECHAT_APP_ID or WECHAT_APP_SECRET is missing: the API cannot be called."""


def wechat_api(services: Services, settings: Settings) -> WechatApi:
    """The API client for WECHAT_APP_ID with WECHAT_APP_SECRET at WECHAT_API_URL (close it when done)."""
    wx = settings.wechat
    if not wx.app_id or wx.app_secret is None:
        raise WechatNotConfigured("WECHAT_APP_ID and WECHAT_APP_SECRET must be set to call WeChat's API")
    tokens = TokenStore(services.wechat_tokens, wx.app_id)
    return WechatApi(wx.app_id, wx.app_secret.get_secret_value(), wx.api_url, tokens)


def wechat_pay(settings: Settings) -> tuple[WechatPay, Merchant] | None:
    """The WeChat Pay client and merchant from WECHATPAY_* settings, or None when WeChat Pay is not set.
    A setting that makes WeChat Pay impossible raises ``SettingsError`` (one line naming it): the shop
    must not take buyers to a pay link that cannot work."""
    wp, wx = settings.wechatpay, settings.wechat
    if not wp.configured:
        return None
    if not wx.configured or not wx.app_id or wx.app_secret is None:
        raise SettingsError(
            "setting WECHATPAY_MCH_ID: WeChat Pay needs the official account: set WECHAT_APP_ID, "
            "WECHAT_APP_SECRET and WECHAT_TOKEN too"
        )
    if settings.shop.shop_currency != CURRENCY:
        raise SettingsError(
            f"setting SHOP_CURRENCY: WeChat Pay charges in CNY, the shop's prices are in "
            f"{settings.shop.shop_currency}; set SHOP_CURRENCY=CNY or leave WECHATPAY_* unset"
        )
    if not wx.public_url:
        raise SettingsError(
            "setting WECHAT_PUBLIC_URL: WeChat Pay needs the https:// address buyers reach this server at "
            "(pay pages, notifies)"
        )
    assert wp.mch_id and wp.private_key_file and wp.cert_serial and wp.api_v3_key  # configured
    keys: dict[str, Path] = {}
    if wp.public_key_file and wp.public_key_id:
        keys[wp.public_key_id] = wp.public_key_file
    if wp.platform_cert_file is not None:
        keys[_certificate_serial(wp.platform_cert_file)] = wp.platform_cert_file
    base = f"{wx.public_url}{wx.callback_path.rstrip('/')}"
    try:
        config = PayConfig.load(
            mch_id=wp.mch_id,
            app_id=wx.app_id,
            private_key=wp.private_key_file,
            serial_no=wp.cert_serial,
            api_v3_key=wp.api_v3_key.get_secret_value(),
            platform_keys=keys,
            notify_url=f"{base}/pay/notify",
            refund_notify_url=f"{base}/pay/refund-notify",
            api_url=wp.api_url,
        )
    except ValueError as e:
        raise SettingsError(f"setting WECHATPAY_PRIVATE_KEY_FILE: {e}") from None
    return WechatPay(config), Merchant(wx.app_id, wp.mch_id)


def reminder_templates(api: TemplateApi, settings: Settings) -> Templates | None:
    """Membership reminders as WECHAT_TEMPLATE_REMINDER's template messages when the buyer's window is
    closed; None without the setting (they wait for the window)."""
    wx = settings.wechat
    if not wx.template_reminder:
        return None
    return Templates(api, ReminderTemplate.with_keys(wx.template_reminder, wx.template_reminder_keys))


def _certificate_serial(path: Path) -> str:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        raise SettingsError(
            "setting WECHATPAY_PLATFORM_CERT_FILE: not a PEM certificate (wechatpay_….pem)"
        ) from None
    # byte by byte, as WeChat Pay writes it in Wechatpay-Serial: a first byte below 0x10 keeps its 0
    # (format(n, "X") dropped it, and then no notify from that certificate verified)
    serial = cert.serial_number
    return serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big").hex().upper()


class WechatChannel:
    """The WeChat channel of one process: the callback (and, with WeChat Pay, the pages and notifies)
    mounted on an aiohttp application, the API client, the WeChat Pay client and its reconciliation.
    ``close`` releases the HTTP clients."""

    def __init__(self, services: Services, settings: Settings) -> None:
        wx = settings.wechat
        assert wx.configured and wx.app_id and wx.token
        self.services, self.settings = services, settings
        self.api = wechat_api(services, settings) if wx.app_secret is not None else None
        paying = wechat_pay(settings)
        self.pay: WechatPay | None = paying[0] if paying is not None else None
        self.merchant: Merchant | None = paying[1] if paying is not None else None
        self.reconciler = (
            WechatPayReconciler(services, self.pay, self.merchant)
            if self.pay is not None and self.merchant is not None
            else None
        )
        self.config = WechatConfig(
            app_id=wx.app_id,
            token=wx.token.get_secret_value(),
            aes_key=wx.aes_key.get_secret_value() if wx.aes_key else None,
            locale_dir=compile_catalogs(),
            callback_path=wx.callback_path,
        )
        self.sender: WechatSender | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, services: Services, settings: Settings) -> WechatChannel | None:
        """The channel when WECHAT_APP_ID and WECHAT_TOKEN are set; None otherwise."""
        return cls(services, settings) if settings.wechat.configured else None

    def mount(self, app: web.Application) -> None:
        wx = self.settings.wechat
        paying = None
        if self.pay is not None and self.merchant is not None and wx.public_url and wx.app_secret:
            paying = PayWiring(
                pay=self.pay,
                merchant=self.merchant,
                pages=PagesConfig(
                    app_id=self.config.app_id,
                    public_url=wx.public_url,
                    base_path=wx.callback_path,
                    oauth_url=wx.oauth_url,
                ),
                session_secret=wx.app_secret.get_secret_value(),
            )
        if self.api is None:
            log.warning("WECHAT_APP_SECRET is not set: distributors get no QR code from 推广")
        add_channel_routes(app, self.services, self.config, self.api, paying)
        log.info(
            "wechat pushes served on %s%s",
            wx.callback_path,
            " with WeChat Pay" if paying else " (no WeChat Pay)",
        )

    def start(self, alerts: Alerts | None = None) -> None:
        """Deliver the outbox's WeChat messages (customer-service texts; WeChat Pay refunds; with
        WECHAT_TEMPLATE_REMINDER, membership reminders outside the window as template messages) in the
        background. Without WECHAT_APP_SECRET nothing can be sent: they wait, and the log says so."""
        if self.api is None:
            log.warning("WECHAT_APP_SECRET is not set: messages to WeChat buyers wait in the outbox")
            return
        wx = self.settings.wechat
        pay, services = self.pay, self.services
        pay_back: PayBackCall | None = None
        if pay is not None:

            async def refund(m: RefundDue, _: OutboxMessage) -> None:
                await pay_back_charge(services, pay, m)

            pay_back = refund
        # the order page, where keys too long or too many for the chat are shown, comes with WeChat Pay
        pages = (
            f"{wx.public_url}{wx.callback_path.rstrip('/')}" if wx.public_url and pay is not None else None
        )
        texts = Texts(self.config.locale_dir)
        templates = reminder_templates(self.api, self.settings)
        self.sender = WechatSender(
            services, self.api, texts, pages, pay_back, alerts=alerts, templates=templates
        )
        self._stop.clear()
        self._task = asyncio.create_task(self.sender.run(self._stop), name="wechat-outbox")

    async def close(self) -> None:
        if self._task is not None:
            self._stop.set()
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.api is not None:
            await self.api.close()
        if self.pay is not None:
            await self.pay.close_session()


async def run_wechat_only(services: Services, settings: Settings) -> None:
    """``keyshop run`` with the official account and no BOT_TOKEN: the channel on WEBHOOK_LISTEN (with
    /healthz), the scheduled jobs unless SCHEDULER is off, until cancelled."""
    from bot.ops import serve
    from bot.runtime import job_schedule
    from scheduler.runner import build_scheduler
    from scheduler.spec import JobContext

    channel = WechatChannel(services, settings)
    app = web.Application()
    channel.mount(app)
    app.router.add_get("/healthz", _healthz(services))
    runner = await serve(app, settings.webhook.webhook_listen)
    ctx = JobContext(services, schedule=job_schedule(settings), wechatpay=channel.reconciler)
    scheduler = build_scheduler(ctx)
    channel.start()
    try:
        if settings.scheduler.scheduler:
            scheduler.start()
        log.info("serving the WeChat official account on %s; Ctrl+C stops", settings.webhook.webhook_listen)
        await asyncio.Event().wait()  # until cancelled (SIGTERM/SIGINT)
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)
        await runner.cleanup()
        await channel.close()


def _healthz(services: Services) -> Callable[[web.Request], Awaitable[web.Response]]:
    """``GET /healthz`` of the WeChat-only server: 200 when the database answers a trivial query within
    ``HEALTH_TIMEOUT`` seconds, else 503 (as the Telegram server's ``bot.ops``, without Redis)."""
    from bot.ops import HEALTH_TIMEOUT

    async def healthz(_: web.Request) -> web.Response:
        try:
            await asyncio.wait_for(services.monitoring.ping(), HEALTH_TIMEOUT)
        except Exception as e:
            state = "timeout" if isinstance(e, TimeoutError) else "unreachable"
            return web.json_response({"status": "unavailable", "database": state}, status=503)
        return web.json_response({"status": "ok", "database": "ok"})

    return healthz
