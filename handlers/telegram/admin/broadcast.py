"""/broadcast (owners and admins): a message to the shop's buyers.

1. Choose the audience: all buyers, buyers of one product (from buttons), or buyers active in the last N
   days (typed, 1 to 365). Who counts as a buyer: ``core.repositories.broadcasts.Audience``.
2. Send the text, in HTML as Telegram reads it (``<b>``, ``<i>``, ``<a href="…">``, ``&lt;`` for a ``<``).
3. The preview is the text sent back exactly as the recipients will get it (the same text, the same way),
   so what Telegram refuses (HTML it cannot parse, a text too long) is refused here, with the reason; then
   the recipient count with Confirm / Edit / Cancel.
4. Confirmed, the same message becomes the progress message (``workers.broadcasts``) with a Cancel button.
"""

from __future__ import annotations

import re

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import get_i18n

from core.repositories.broadcasts import Audience
from core.roles import Power
from core.services import Services
from core.services.broadcasts import MAX_DAYS
from handlers.telegram.admin.common import actor, back_to_menu
from handlers.telegram.admin.filters import CHANNEL, Has
from handlers.telegram.filters import When
from handlers.telegram.ui.broadcast import audience_text, progress_view
from handlers.telegram.ui.callbacks import AdminCb, BroadcastAudienceCb, BroadcastCb
from handlers.telegram.ui.text import BUTTON_TEXT_MAX, acknowledge, redraw, show, tr, tr_plain
from handlers.telegram.workers.broadcasts import BroadcastRunner

MAX_PRODUCT_BUTTONS = 90  # a keyboard holds 100 buttons
TEXT_MAX = 4096  # Telegram's limit for a message, once its HTML is parsed
_DAYS = re.compile(r"[0-9]{1,3}")


class Compose(StatesGroup):
    days = State()
    text = State()


def _button(text: str, data: BroadcastAudienceCb | BroadcastCb) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


async def broadcast_screen(event: Message | CallbackQuery, state: FSMContext, services: Services) -> None:
    """Receives: /broadcast and the menu's Broadcast button: choose the audience."""
    await state.clear()
    buyers = await services.broadcasts.count(CHANNEL, Audience("all"))
    rows = [
        [_button(tr_plain("admin-btn-broadcast-all", count=buyers), BroadcastAudienceCb(kind="all"))],
        [_button(tr_plain("admin-btn-broadcast-product"), BroadcastAudienceCb(kind="product"))],
        [_button(tr_plain("admin-btn-broadcast-active"), BroadcastAudienceCb(kind="active"))],
        [back_to_menu()],
    ]
    await show(event, tr("admin-broadcast-choose"), InlineKeyboardMarkup(inline_keyboard=rows))


async def choose_audience(
    query: CallbackQuery, callback_data: BroadcastAudienceCb, state: FSMContext, services: Services
) -> None:
    """Receives: an audience button (and a product's, for buyers of that product)."""
    if callback_data.kind == "all":
        await _ask_text(query, state, Audience("all"))
    elif callback_data.kind == "active":
        await state.set_state(Compose.days)
        await show(query, tr("admin-broadcast-ask-days", max=MAX_DAYS), _cancel_markup())
    elif callback_data.product_id == 0:
        await _products(query, services)
    else:
        audience = Audience("product", product_id=callback_data.product_id)
        await services.broadcasts.count(CHANNEL, audience)  # refuses a product that does not exist
        await _ask_text(query, state, audience)


async def _products(query: CallbackQuery, services: Services) -> None:
    products = await services.catalog.products()
    rows = [
        [
            _button(
                tr_plain("admin-btn-broadcast-of", id=p.id, name=p.name, limit=BUTTON_TEXT_MAX),
                BroadcastAudienceCb(kind="product", product_id=p.id),
            )
        ]
        for p in products[:MAX_PRODUCT_BUTTONS]
    ]
    rows.append([_button(tr_plain("button-back"), AdminCb(screen="broadcast"))])  # type: ignore[arg-type]
    text = tr("admin-broadcast-choose-product") if products else tr("admin-products-none")
    await show(query, text, InlineKeyboardMarkup(inline_keyboard=rows))


def _cancel_markup() -> InlineKeyboardMarkup:
    cancel = InlineKeyboardButton(
        text=tr_plain("admin-btn-broadcast-drop"), callback_data=AdminCb(screen="broadcast").pack()
    )
    return InlineKeyboardMarkup(inline_keyboard=[[cancel]])


async def _ask_text(
    event: Message | CallbackQuery, state: FSMContext, audience: Audience, draft_id: int | None = None
) -> None:
    await state.set_state(Compose.text)
    await state.update_data(
        kind=audience.kind, product_id=audience.product_id, days=audience.days, draft=draft_id
    )
    await show(event, tr("admin-broadcast-ask-text", audience=audience_text(audience)), _cancel_markup())


async def got_days(message: Message, state: FSMContext) -> None:
    """Receives: the admin's answer to "active in the last how many days?"."""
    text = (message.text or "").strip()
    if not _DAYS.fullmatch(text) or not 1 <= int(text) <= MAX_DAYS:
        await message.answer(tr("admin-broadcast-days-usage", max=MAX_DAYS))
        return
    await _ask_text(message, state, Audience("active", days=int(text)))


async def got_text(message: Message, state: FSMContext, services: Services) -> None:
    """Receives: the broadcast's text. It is sent back as the preview, exactly as recipients will get it:
    what Telegram refuses to send is refused here, with its reason."""
    if not message.text:
        await message.answer(tr("admin-broadcast-text-only"))
        return
    data = await state.get_data()
    audience = Audience(data.get("kind", "all"), data.get("product_id"), data.get("days"))
    try:
        await message.answer(message.text)
    except TelegramBadRequest as e:
        if "too long" in e.message.lower():
            await message.answer(tr("admin-broadcast-too-long", max=TEXT_MAX))
        else:
            await message.answer(tr("admin-broadcast-bad-html", reason=e.message))
        return
    draft_id, count = await services.broadcasts.save_draft(
        CHANNEL, audience, message.text, actor=actor(message), draft_id=data.get("draft")
    )
    await state.clear()
    row = [
        _button(tr_plain("admin-btn-broadcast-edit"), BroadcastCb(action="edit", broadcast_id=draft_id)),
        _button(tr_plain("admin-btn-broadcast-drop"), BroadcastCb(action="drop", broadcast_id=draft_id)),
    ]
    if count:
        go = BroadcastCb(action="go", broadcast_id=draft_id)
        row.insert(0, _button(tr_plain("admin-btn-broadcast-go", count=count), go))
    key = "admin-broadcast-preview" if count else "admin-broadcast-preview-nobody"
    await message.answer(
        tr(key, count=count, audience=audience_text(audience)),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[row]),
    )


async def on_broadcast(
    query: CallbackQuery,
    callback_data: BroadcastCb,
    state: FSMContext,
    services: Services,
    broadcaster: BroadcastRunner,
    bot: Bot,
) -> None:
    """Receives: Confirm, Edit and Cancel under a preview, and Cancel under a progress message."""
    bid, bc = callback_data.broadcast_id, services.broadcasts
    if callback_data.action == "go":
        shown = query.message if isinstance(query.message, Message) else None
        await bc.start(
            bid,
            actor=actor(query),
            progress_chat=str(query.from_user.id) if shown else None,
            progress_message_id=shown.message_id if shown else None,
            language=get_i18n().current_locale,
            runner=broadcaster.name,  # this process leads it: no other edits the message meanwhile
        )
        await acknowledge(query, tr_plain("admin-broadcast-started"))
        text, markup = progress_view(await bc.progress(bid))
        await redraw(query, text, markup)
        broadcaster.run(bot, bid, shown=text)
    elif callback_data.action == "edit":
        row = await bc.get(bid)
        if row.status != "draft":
            await acknowledge(query, tr_plain("admin-broadcast-not-draft"), show_alert=True)
            return
        await _ask_text(query, state, row.target, draft_id=bid)
    elif callback_data.action == "drop":
        await bc.discard(bid, actor=actor(query))
        await show(query, tr("admin-broadcast-dropped"))
    else:
        stopped = await bc.cancel(bid, actor=actor(query))
        await acknowledge(query, tr_plain("admin-broadcast-stopped" if stopped else "admin-broadcast-over"))
        broadcaster.run(bot, bid)  # the progress message's last edit (here too after a restart)


def build() -> Router:
    router = Router(name=__name__)
    router.message.filter(Has(Power.BROADCAST))
    router.callback_query.filter(Has(Power.BROADCAST))
    router.message.register(broadcast_screen, Command("broadcast"))
    router.callback_query.register(broadcast_screen, AdminCb.filter(F.screen == "broadcast"))
    router.callback_query.register(choose_audience, BroadcastAudienceCb.filter())
    router.callback_query.register(on_broadcast, BroadcastCb.filter())
    # Commands go where they are meant to, whatever step a broadcast is at.
    typed = When(~F.text.startswith("/"))
    router.message.register(got_days, StateFilter(Compose.days), typed)
    router.message.register(got_text, StateFilter(Compose.text), typed)
    return router
