"""A shared product card, as it is posted in a group (``/share``) or picked from the inline results: the
product's name, description, price and whether it is in stock, and one URL button that opens the bot on
that product with the sharer's referral (``deeplinks``). The card is what the whole group reads: it says
"in stock" or "sold out", never a count that is stale a minute later."""

from __future__ import annotations

import html

from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
)

from core.services.sharing import Shared
from handlers.telegram.ui.deeplinks import StartLink, deep_link
from handlers.telegram.ui.text import BUTTON_TEXT_MAX, clip, price, tr, tr_plain

DESCRIPTION_MAX = 600  # characters of the product's description a card shows: a card, not a page
TITLE_MAX = 64  # an inline result's title (a product name is at most 64 already)


def stock_state(shared: Shared, *, plain: bool = False) -> str:
    key = "share-in-stock" if shared.in_stock else "share-sold-out"
    return tr_plain(key) if plain else tr(key)


def card_text(shared: Shared) -> str:
    """The card (HTML): the admin's name and description are escaped, never markup."""
    p = shared.product
    lines = [f"<b>{html.escape(p.name, quote=False)}</b>"]
    if p.description:
        lines.append(html.escape(clip(p.description, DESCRIPTION_MAX), quote=False))
    lines += ["", tr("product-price", price=price(p)), stock_state(shared)]
    return "\n".join(lines)


def buy_button(bot_username: str, shared: Shared, code: str) -> InlineKeyboardMarkup:
    """Buy: ``https://t.me/<bot>?start=r<code>_p<id>``, the sharer's link to this product."""
    url = deep_link(bot_username, StartLink(code, shared.product.id))
    label = clip(tr_plain("share-button-buy"), BUTTON_TEXT_MAX)
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=label, url=url)]])


def inline_result(bot_username: str, shared: Shared, code: str) -> InlineQueryResultArticle:
    """One inline result: titled with the product's name, described by its price and stock state (plain
    text: Telegram does not parse either), posting the card with the Buy button."""
    p = shared.product
    state = stock_state(shared, plain=True)
    return InlineQueryResultArticle(
        id=f"p{p.id}",
        title=clip(p.name, TITLE_MAX),
        description=tr_plain("share-result-description", price=price(p), stock=state),
        input_message_content=InputTextMessageContent(message_text=card_text(shared)),
        reply_markup=buy_button(bot_username, shared, code),
    )
