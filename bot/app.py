"""The Telegram storefront as one object: bot, dispatcher, outbox sender and scheduler, started and
stopped together. ``keyshop run`` and ``keyshop sandbox`` both build it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

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
from bot.runtime import job_schedule
from bot.settings import Settings, generate_webhook_secret
from core.services import Services
from handlers.telegram import build_dispatcher, set_commands, set_staff_menus
from handlers.telegram.alerts import AdminAlerts
from handlers.telegram.middlewares import ThrottleMiddleware
from handlers.telegram.workers.outbox import OutboxSender
from handlers.telegram.workers.reconcile import NoticeReporter, StarLedger
from scheduler.runner import build_scheduler
from scheduler.spec import JobContext

log = logging.getLogger("keyshop")


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


def make_storage(settings: Settings) -> BaseStorage | None:
    if not settings.redis.redis_url:
        return None  # aiogram's in-memory storage
    from aiogram.fsm.storage.redis import RedisStorage

    return RedisStorage.from_url(settings.redis.redis_url)


@dataclass
class Storefront:
    services: Services
    bot: Bot
    dp: Dispatcher
    outbox: OutboxSender
    scheduler: AsyncIOScheduler
    i18n: I18n
    ledger: StarLedger
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        services: Services,
        settings: Settings,
        bot: Bot,
        *,
        sender: dict[str, Any] | None = None,
        throttle: ThrottleMiddleware | None = None,
    ) -> Storefront:
        i18n = build_i18n()
        alerts = AdminAlerts(bot, settings.telegram.admin_ids)
        outbox = OutboxSender(
            bot, services, i18n, admin_ids=settings.telegram.admin_ids, alerts=alerts, **(sender or {})
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
            storage=make_storage(settings),
            throttle=throttle,
        )
        ledger = StarLedger(bot, services, outbox, alerts)
        scheduler = build_scheduler(
            JobContext(
                services,
                schedule=job_schedule(settings),
                notice_report=NoticeReporter(outbox, alerts),
                reconciler=ledger,
            )
        )
        return cls(services, bot, dp, outbox, scheduler, i18n, ledger)

    async def start_background(self) -> None:
        """Outbox sender and sweeper jobs; the command menus (everyone's, each staff member's); stale
        imports cleared."""
        await set_commands(self.bot, self.i18n)
        await set_staff_menus(self.bot, self.i18n, self.services, self.dp.workflow_data["admin_ids"])
        await self.services.stock.abandon_stale_imports()
        self.scheduler.start()
        self._tasks.append(asyncio.create_task(self.outbox.run(), name="outbox"))

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
        await self.bot.session.close()


async def run_polling(front: Storefront) -> None:
    await front.start_background()
    settle_heap()
    await front.bot.delete_webhook(drop_pending_updates=False)
    log.info("polling for updates; Ctrl+C stops")
    await front.dp.start_polling(front.bot, polling_timeout=30, close_bot_session=False)


def webhook_app(front: Storefront, secret: str, path: str) -> Any:
    """The aiohttp application Telegram calls. Requests without the secret token get 401."""
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
    from aiohttp import web

    app = web.Application()
    SimpleRequestHandler(dispatcher=front.dp, bot=front.bot, secret_token=secret).register(app, path=path)
    setup_application(app, front.dp, bot=front.bot)
    return app


async def run_webhook(front: Storefront, settings: Settings) -> None:
    from aiohttp import web

    hook = settings.webhook
    assert hook.webhook_url
    secret = hook.webhook_secret.get_secret_value() if hook.webhook_secret else generate_webhook_secret()
    path = "/" + hook.webhook_url.split("://", 1)[1].partition("/")[2]
    app = webhook_app(front, secret, path)
    await front.start_background()
    settle_heap()
    await front.bot.set_webhook(hook.webhook_url, secret_token=secret, drop_pending_updates=False)
    host, _, port = hook.webhook_listen.rpartition(":")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, int(port)).start()
    log.info("webhook listening on %s for %s", hook.webhook_listen, hook.webhook_url)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
