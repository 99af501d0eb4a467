"""The Telegram storefront as one object: bot, dispatcher, outbox sender and scheduler, started and
stopped together. ``keyshop run`` and ``keyshop sandbox`` both build it.

It waits out outages instead of failing: every start-up step that needs the database or Telegram is
retried with capped exponential backoff (``Storefront.backoff``) while its error is an outage, and each
outage is logged once when it starts and once when it ends (``handlers.telegram.health``). A wrong setting
(401 for the token) is raised at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from aiogram import Bot, Dispatcher, methods
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseStorage
from aiogram.methods.base import Response
from aiogram.utils.i18n import I18n
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.heap import settle_heap
from bot.i18n import build_i18n
from bot.metrics import ShopMetrics
from bot.ops import add_ops_routes, ops_app, serve
from bot.runtime import job_schedule
from bot.settings import Settings, generate_webhook_secret
from core.resilience import Backoff, Dependency, retry_until_up
from core.services import Services
from handlers.telegram import build_dispatcher, set_commands, set_staff_menus
from handlers.telegram.alerts import AdminAlerts
from handlers.telegram.health import Health, OutageLogFilter, telegram_wait
from handlers.telegram.middlewares import ThrottleMiddleware
from handlers.telegram.storage import FallbackStorage
from handlers.telegram.workers.outbox import OutboxSender
from handlers.telegram.workers.reconcile import NoticeReporter, StarLedger
from scheduler.runner import build_scheduler
from scheduler.spec import JobContext

if TYPE_CHECKING:
    from bot.wechat import WechatChannel
    from handlers.telegram.shared import RedisShared

log = logging.getLogger("keyshop")

_T = TypeVar("_T")


# aiogram checks every API response as ``Response[<method's return type>]``; pydantic caches those
# parametrized classes only weakly, so each one was garbage-collected and rebuilt (schema and all) over
# and over: most of the bot's CPU time under load. Holding them keeps the cache warm.
_RESPONSE_TYPES = [
    Response[m.__returning__]  # type: ignore[name-defined]
    for m in (
        methods.GetUpdates,
        methods.GetMe,
        methods.SendMessage,
        methods.EditMessageText,
        methods.EditMessageReplyMarkup,
        methods.AnswerCallbackQuery,
        methods.SendInvoice,
        methods.AnswerPreCheckoutQuery,
        methods.RefundStarPayment,
        methods.SendDocument,
        methods.SendPhoto,
        methods.GetFile,
        methods.SetMyCommands,
        methods.DeleteMyCommands,
        methods.DeleteWebhook,
        methods.SetWebhook,
        methods.DeleteMessage,
        methods.GetStarTransactions,
    )
]


def make_bot(token: str, api_url: str) -> Bot:
    """A bot talking to ``api_url``: Telegram's, a self-hosted telegram-bot-api, or the emulator."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_url))
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


def make_storage(settings: Settings, redis: Dependency | None = None) -> BaseStorage | None:
    """Redis with REDIS_URL (in memory while Redis is away, see ``FallbackStorage``); else None: aiogram's
    in-memory storage."""
    if not settings.redis.redis_url:
        return None
    from aiogram.fsm.storage.base import DefaultKeyBuilder
    from aiogram.fsm.storage.redis import RedisStorage
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialWithJitterBackoff

    # Fail fast when Redis is away (redis-py's default is 10 retries): the fallback takes over and asks
    # again after its own backoff, so an update never waits on a dead Redis for long.
    quick = {
        "socket_connect_timeout": 2.0,
        "socket_timeout": 5.0,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 2),
    }
    # Keys with the bot's id (``fsm:<bot id>:…``), as every other key of ours: shops sharing one Redis
    # must not see each other's conversations with a buyer who uses both (aiogram leaves it out by default).
    keys = DefaultKeyBuilder(with_bot_id=True)
    primary = RedisStorage.from_url(settings.redis.redis_url, connection_kwargs=quick, key_builder=keys)
    return FallbackStorage(primary, redis or Dependency("Redis"))


def make_shared(settings: Settings, bot: Bot, redis: Dependency | None = None) -> RedisShared | None:
    """With REDIS_URL, what the instances of one bot share besides FSM state: the throttle, the user cache
    and the send pace (``handlers.telegram.shared``); without it, each stays in this process's memory."""
    if not settings.redis.redis_url:
        return None
    from handlers.telegram.shared import RedisShared

    return RedisShared.from_url(settings.redis.redis_url, bot.id, redis)


@dataclass
class Storefront:
    services: Services
    bot: Bot
    dp: Dispatcher
    outbox: OutboxSender
    scheduler: AsyncIOScheduler
    i18n: I18n
    ledger: StarLedger
    health: Health
    metrics: ShopMetrics
    runs_jobs: bool = True  # SCHEDULER: the scheduled jobs run in this process
    backoff: Backoff = field(default_factory=Backoff)  # between tries while a dependency is away
    shared: RedisShared | None = None
    wechat: WechatChannel | None = None  # WECHAT_*: the official account served beside the bot
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _outage_logs: OutageLogFilter | None = None

    @classmethod
    def build(
        cls,
        services: Services,
        settings: Settings,
        bot: Bot,
        *,
        sender: dict[str, Any] | None = None,
        throttle: ThrottleMiddleware | None = None,
        health: Health | None = None,
        wechat: WechatChannel | None = None,
    ) -> Storefront:
        i18n = build_i18n()
        health = health or Health()
        backoff = Backoff(first=settings.ops.retry_first_seconds, cap=settings.ops.retry_max_seconds)
        metrics = ShopMetrics(services, health)
        alerts = AdminAlerts(bot, settings.telegram.admin_ids)
        shared = make_shared(settings, bot, health.redis)
        options: dict[str, Any] = {"outage_backoff": backoff, **(sender or {})}
        outbox = OutboxSender(
            bot,
            services,
            i18n,
            admin_ids=settings.telegram.admin_ids,
            alerts=alerts,
            shared=shared,
            telemetry=metrics,
            health=health,
            **options,
        )
        token = settings.telegram.payment_provider_token
        dp = build_dispatcher(
            services,
            i18n=i18n,
            outbox=outbox,
            admin_ids=settings.telegram.admin_ids,
            alerts=alerts,
            reservation_minutes=settings.shop.reservation_ttl_minutes,
            fiat_currency=settings.shop.shop_currency,
            payment_provider_token=token.get_secret_value() if token else None,
            storage=make_storage(settings, health.redis),
            throttle=throttle or ThrottleMiddleware(i18n, shared=shared),
        )
        dp.workflow_data["health"] = health  # the error handler tells an outage from a bug
        ledger = StarLedger(bot, services, outbox, alerts)
        jobs = JobContext(
            services,
            schedule=job_schedule(settings),
            notice_report=NoticeReporter(outbox, alerts),
            reconciler=ledger,
            database=health.database,
            wechatpay=wechat.reconciler if wechat is not None else None,
        )
        return cls(
            services,
            bot,
            dp,
            outbox,
            build_scheduler(jobs),
            i18n,
            ledger,
            health,
            metrics,
            settings.scheduler.scheduler,
            backoff,
            shared,
            wechat,
        )

    async def until_up(self, step: Callable[[], Awaitable[_T]]) -> _T:
        """``step()``, retried while it fails on an outage of the database, Telegram or Redis."""
        return await retry_until_up(step, self.health.owner, self.backoff, wait_hint=telegram_wait)

    async def start_background(self) -> None:
        """Stale imports cleared; the scheduled jobs (unless SCHEDULER is off) and the outbox sender; then,
        once Telegram answers, the command menus (everyone's, each staff member's). A token Telegram
        refuses (401) is raised."""
        self._outage_logs = OutageLogFilter(self.health)
        self._outage_logs.install()
        await self.until_up(self.services.stock.abandon_stale_imports)
        if self.runs_jobs:
            self.scheduler.start()
        self._tasks.append(asyncio.create_task(self.outbox.run(), name="outbox"))
        if self.wechat is not None:  # the WeChat buyers' messages, beside Telegram's
            self.wechat.start(self.outbox.alerts)
        await self.until_up(self.bot.me)  # who we are; also where a wrong token shows
        await self.until_up(lambda: set_commands(self.bot, self.i18n))
        admins = self.dp.workflow_data["admin_ids"]
        await self.until_up(lambda: set_staff_menus(self.bot, self.i18n, self.services, admins))

    async def start_polling(self) -> None:
        """Long polling in the background (tests, sandbox)."""
        await self.bot.delete_webhook(drop_pending_updates=False)
        self._tasks.append(
            asyncio.create_task(
                self.dp.start_polling(
                    self.bot, handle_signals=False, polling_timeout=10, close_bot_session=False
                ),
                name="polling",
            )
        )

    async def poll(self, polling_timeout: int = 30) -> None:
        """Long polling until it is stopped (``stop``). aiogram retries a failing getUpdates itself; should
        polling end on an outage anyway (the database away while its start-up ran), it starts again."""
        attempt = 0
        while True:
            task = asyncio.create_task(
                self.dp.start_polling(
                    self.bot,
                    handle_signals=False,  # ``keyshop run`` handles them, and stops through ``stop``
                    polling_timeout=polling_timeout,
                    close_bot_session=False,
                ),
                name="polling",
            )
            self._tasks.append(task)
            await asyncio.wait([task])  # a cancelled caller leaves the task to ``stop``, which ends it
            if task.cancelled() or task.exception() is None:
                return
            error = task.exception()
            assert error is not None
            dependency = self.health.owner(error)
            if dependency is None:
                raise error
            dependency.failed(error)
            await asyncio.sleep(self.backoff.delay(attempt))
            attempt += 1

    async def stop(self) -> None:
        """Jobs first, then polling and the sender, and the HTTP session last (nothing is mid-request)."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        with contextlib.suppress(RuntimeError):
            await self.dp.stop_polling()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.dp.storage.close()
        if self.shared is not None:
            await self.shared.close()
        await self.bot.session.close()
        if self.wechat is not None:
            await self.wechat.close()
        if self._outage_logs is not None:
            self._outage_logs.uninstall()
            self._outage_logs = None


def job_context(services: Services, settings: Settings) -> tuple[JobContext, Callable[[], Awaitable[None]]]:
    """The jobs' context for a scheduler running without the storefront (``keyshop scheduler``, ``keyshop
    jobs run``), and what closes its clients. With BOT_TOKEN, the Stars ledger to reconcile and admins to
    alert; with WECHATPAY_*, WeChat Pay's reconciliation; without either, every other job."""
    from bot.wechat import wechat_pay
    from handlers.wechat.paid import WechatPayReconciler

    schedule = job_schedule(settings)
    paying = wechat_pay(settings)
    wechatpay = WechatPayReconciler(services, *paying) if paying is not None else None
    tg = settings.telegram
    bot = make_bot(tg.bot_token.get_secret_value(), tg.telegram_api_url) if tg.bot_token else None

    async def close() -> None:
        if bot is not None:
            await bot.session.close()
        if paying is not None:
            await paying[0].close_session()

    if bot is None:
        return JobContext(services, schedule=schedule, wechatpay=wechatpay), close
    alerts = AdminAlerts(bot, tg.admin_ids)
    # Never run: the ledger and the notices job only wake it; the storefronts' senders deliver.
    outbox = OutboxSender(bot, services, build_i18n(), admin_ids=tg.admin_ids, alerts=alerts)
    ctx = JobContext(
        services,
        schedule=schedule,
        notice_report=NoticeReporter(outbox, alerts),
        reconciler=StarLedger(bot, services, outbox, alerts),
        wechatpay=wechatpay,
    )
    return ctx, close


async def run_polling(front: Storefront, settings: Settings | None = None) -> None:
    """Long polling until stopped, with /healthz and /metrics on OPS_LISTEN if set, and the WeChat
    official account (when set) on WEBHOOK_LISTEN, the address a webhook would have."""
    listen = settings.ops.listen if settings is not None else None
    ops = await serve(ops_app(front), listen) if listen else None
    wechat = None
    if front.wechat is not None and settings is not None:
        from aiohttp import web

        app = web.Application()
        front.wechat.mount(app)
        wechat = await serve(app, settings.webhook.webhook_listen)
    try:
        await front.start_background()
        settle_heap()
        await front.until_up(lambda: front.bot.delete_webhook(drop_pending_updates=False))
        log.info("polling for updates; Ctrl+C stops")
        await front.poll(polling_timeout=30)
    finally:
        if wechat is not None:
            await wechat.cleanup()
        if ops is not None:
            await ops.cleanup()


def webhook_app(front: Storefront, secret: str, path: str) -> Any:
    """The aiohttp application Telegram calls. Requests without the secret token get 401. It also
    answers /healthz and /metrics (``bot.ops``)."""
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
    from aiohttp import web

    app = web.Application()
    SimpleRequestHandler(dispatcher=front.dp, bot=front.bot, secret_token=secret).register(app, path=path)
    setup_application(app, front.dp, bot=front.bot)
    add_ops_routes(app, front)
    return app


def mount_wechat(
    app: Any, services: Services, settings: Settings, channel: WechatChannel | None = None
) -> bool:
    """Serve the WeChat official account (pushes; with WeChat Pay its pages and notifies) on ``app`` at
    WECHAT_CALLBACK_PATH when WECHAT_APP_ID and WECHAT_TOKEN are set; True if mounted. A channel built
    here is closed with ``app``; ``channel`` (the storefront's) is its owner's to close."""
    if channel is None:
        from bot.wechat import WechatChannel

        channel = WechatChannel.from_settings(services, settings)
        if channel is None:
            return False
        built = channel

        async def close(_: Any) -> None:
            await built.close()

        app.on_cleanup.append(close)
    channel.mount(app)
    return True


async def run_webhook(front: Storefront, settings: Settings) -> None:
    """The webhook server first (health checks answer while Telegram is still being reached), then the
    background work, then setWebhook (retried while Telegram is away)."""
    hook = settings.webhook
    assert hook.webhook_url
    secret = hook.webhook_secret.get_secret_value() if hook.webhook_secret else generate_webhook_secret()
    url = hook.webhook_url
    path = "/" + url.split("://", 1)[1].partition("/")[2]
    app = webhook_app(front, secret, path)
    mount_wechat(app, front.services, settings, front.wechat)
    runners = [await serve(app, hook.webhook_listen)]
    try:
        if settings.ops.listen and settings.ops.listen != hook.webhook_listen:
            runners.append(await serve(ops_app(front), settings.ops.listen))
        await front.start_background()
        settle_heap()
        await front.until_up(
            lambda: front.bot.set_webhook(url, secret_token=secret, drop_pending_updates=False)
        )
        log.info("webhook listening on %s for %s", hook.webhook_listen, hook.webhook_url)
        await asyncio.Event().wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
