"""/invite: the user's personal invite link (their referral code) as a QR code photo with the link in its
caption, then their distributor dashboard as a message of its own (ten commissions do not fit a caption's
1024 characters): the funnel (link opened → new users → buyers → delivered orders), money per currency
(earned, pending, available, paid out) and their latest commissions (order masked, level, amount, state),
with Refresh and paging buttons that redraw the dashboard in place."""

from __future__ import annotations

from datetime import tzinfo

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from core.models import User, UserIdentity
from core.services import Services
from core.services.distributors import Dashboard, EarnedCommission
from handlers.money import format_amount
from handlers.telegram.buyer.withdraw import withdraw_button
from handlers.telegram.chats import private_router
from handlers.telegram.middlewares import UserCache
from handlers.telegram.ui.callbacks import MAX_PAGE, InviteCb
from handlers.telegram.ui.deeplinks import StartLink, deep_link
from handlers.telegram.ui.earnings import funnel_line, money_line, status_label
from handlers.telegram.ui.qr import qr_png
from handlers.telegram.ui.text import CALLBACK_ANSWER_MAX, acknowledge, show, tr, tr_plain


def _commission_line(c: EarnedCommission, tz: tzinfo, locale: str) -> str:
    return tr(
        "invite-commission",
        order=c.order,
        level=c.level,
        amount=format_amount(c.amount, c.currency, locale),
        state=status_label(c.status),
        date=c.at.astimezone(tz).strftime("%Y-%m-%d"),
    )


def dashboard_text(d: Dashboard, tz: tzinfo, locale: str) -> str:
    s = d.summary
    lines = [tr("invite-dashboard-title"), funnel_line(s.funnel), ""]
    lines += [money_line(e, locale) for e in s.earnings] or [tr("invite-no-money")]
    lines.append("")
    if d.commissions:
        title = "invite-commissions" if d.page == 0 else "invite-commissions-page"
        lines.append(tr(title, page=d.page + 1))
        lines += [_commission_line(c, tz, locale) for c in d.commissions]
    else:
        lines.append(tr("invite-no-commissions"))
    return "\n".join(lines)


def dashboard_rows(d: Dashboard) -> list[list[InlineKeyboardButton]]:
    """The dashboard's buttons, one list of rows (a feature adds its row here)."""
    nav = []
    if d.page > 0:
        nav.append(_button(tr_plain("invite-btn-newer"), InviteCb(page=d.page - 1)))
    if d.has_more and d.page < MAX_PAGE:
        nav.append(_button(tr_plain("invite-btn-more"), InviteCb(page=d.page + 1)))
    rows = [nav] if nav else []
    rows.append([_button(tr_plain("invite-btn-refresh"), InviteCb(page=d.page)), withdraw_button()])
    return rows


def _button(text: str, data: InviteCb) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


async def _show_dashboard(
    event: Message | CallbackQuery, services: Services, user_id: int, page: int, locale: str
) -> None:
    d = await services.distributors.dashboard(user_id, page)
    text = dashboard_text(d, services.ctx.config.timezone, locale)
    await show(event, text, InlineKeyboardMarkup(inline_keyboard=dashboard_rows(d)))


async def invite(
    message: Message,
    bot: Bot,
    shop_user: User | None,
    identity: UserIdentity,
    services: Services,
    user_cache: UserCache,
    locale: str,
) -> None:
    """Receives: /invite (the code is made at the first one, and the user's row with it)."""
    user = await services.users.stored(shop_user or identity)
    if shop_user is None:
        await user_cache.forget(int(identity.external_id))
    code = await services.referrals.invite(user.id)
    me = await bot.me()
    link = deep_link(me.username or "", StartLink(code.code))
    photo = BufferedInputFile(qr_png(link), filename=f"invite-{code.code}.png")
    await message.answer_photo(photo, caption=tr("invite-text", link=link))
    await _show_dashboard(message, services, user.id, 0, locale)


async def dashboard_button(
    query: CallbackQuery, callback_data: InviteCb, shop_user: User | None, services: Services, locale: str
) -> None:
    """Receives: Refresh and the paging buttons under the dashboard."""
    if shop_user is None:  # no row: not a dashboard of theirs
        await acknowledge(query, tr_plain("error-stale-button", limit=CALLBACK_ANSWER_MAX), show_alert=True)
        return
    await _show_dashboard(query, services, shop_user.id, callback_data.page, locale)


def build() -> Router:
    """A fresh router with this feature's handlers (one per dispatcher); private chats only."""
    router = private_router(__name__)
    router.message.register(invite, Command("invite"))
    router.callback_query.register(dashboard_button, InviteCb.filter())
    return router
