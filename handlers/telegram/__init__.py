"""The Telegram storefront: the dispatcher that wires it (``build_dispatcher``), and its rooms.

- ``buyer/``: the buyer's routers, one per feature (start, catalog, checkout, orders, language, invite,
  share).
- ``admin/``: the admins' routers, reached only by an admin in a private chat.
- ``ui/``: what a user sees: locale-keyed text, typed callback data, keyboards, key delivery.
- ``workers/``: what runs without an update: the outbox sender, the Stars ledger reconciliation (which
  ``scheduler/`` runs).

At this level stays what every room shares and none owns: ``chats`` (which chats and senders the bot
serves, and the group router), ``middlewares`` (the shop user, throttling, language), ``session`` (Bot API
calls made while handling an update), ``errors`` (the one error handler), ``alerts`` (rate-limited admin
alerts) and ``commands`` (the command menus: the buyers' and each staff member's). Small modules the
dispatcher wires in; a subpackage would only add a level.
"""

from __future__ import annotations

from aiogram import Bot, Dispatcher
from aiogram.filters import ExceptionTypeFilter
from aiogram.fsm.storage.base import BaseStorage
from aiogram.utils.i18n import I18n

from core.errors import ShopError
from core.services import Services
from handlers.telegram import admin, chats, errors
from handlers.telegram.admin import refusals
from handlers.telegram.alerts import AdminAlerts
from handlers.telegram.buyer import (
    balance,
    catalog,
    checkout,
    invite,
    language,
    orders,
    share,
    start,
    withdraw,
)
from handlers.telegram.commands import COMMANDS, set_commands, set_staff_menus
from handlers.telegram.middlewares import (
    ShopI18nMiddleware,
    ShopUserMiddleware,
    ThrottleMiddleware,
)
from handlers.telegram.session import AnsweredQueries, BotRequests, InUpdateMiddleware
from handlers.telegram.workers.broadcasts import BroadcastRunner
from handlers.telegram.workers.outbox import OutboxSender

__all__ = ["COMMANDS", "build_dispatcher", "set_commands", "set_staff_menus"]


def build_dispatcher(
    services: Services,
    *,
    i18n: I18n,
    outbox: OutboxSender,
    admin_ids: list[int],
    reservation_minutes: int,
    alerts: AdminAlerts | None = None,
    fiat_currency: str | None = None,
    payment_provider_token: str | None = None,
    storage: BaseStorage | None = None,
    throttle: ThrottleMiddleware | None = None,
) -> Dispatcher:
    dp = Dispatcher(storage=storage) if storage is not None else Dispatcher()
    user_cache = outbox.user_cache
    answered = AnsweredQueries()
    requests = BotRequests(answered, pacer=outbox.pacer, telemetry=outbox.telemetry)
    broadcaster = BroadcastRunner(services, outbox, i18n)
    dp.workflow_data.update(
        services=services,
        user_cache=user_cache,
        outbox=outbox,
        admin_ids=admin_ids,
        alerts=alerts or outbox.alerts,
        reservation_minutes=reservation_minutes,
        fiat_currency=fiat_currency if payment_provider_token else None,
        payment_provider_token=payment_provider_token,
        answered=answered,
        broadcaster=broadcaster,
        group_pacer=outbox.groups,
    )

    async def install_session_middleware(bot: Bot) -> None:
        requests.install(bot)

    async def resume_broadcasts(bot: Bot) -> None:
        await broadcaster.resume(bot)

    dp.startup.register(install_session_middleware)
    dp.startup.register(resume_broadcasts)
    dp.shutdown.register(broadcaster.stop)
    # order matters: drop what no person sent, before a user is loaded or anyone is answered
    dp.update.outer_middleware(chats.SendersMiddleware())
    dp.update.outer_middleware(InUpdateMiddleware())
    dp.update.outer_middleware(ShopUserMiddleware(user_cache))
    dp.update.outer_middleware(throttle or ThrottleMiddleware(i18n))
    ShopI18nMiddleware(i18n).setup(dp)
    dp.errors.register(errors.shop_error, ExceptionTypeFilter(ShopError))
    dp.errors.register(errors.unexpected_error)
    # The buyer's flows first, the busiest first: an update visits the routers in this order until one
    # handles it, and every router passed costs its filters. They match only their own commands, buttons and
    # payments, in private chats (router filters), so nothing of the admins' or a group's reaches them by
    # mistake; only sharing also takes /share in groups, and inline queries. Then the admins' screens (their
    # filter passes everyone else on), then groups; start last: it holds the private catch-alls (unknown
    # commands, free text, unparseable buttons).
    dp.include_routers(
        checkout.build(),
        catalog.build(),
        balance.build(),
        orders.build(),
        language.build(),
        invite.build(),
        share.build(),
        withdraw.build(),
        admin.build(),
        refusals.refusals(),
        chats.build(),
        start.build(),
    )
    return dp
