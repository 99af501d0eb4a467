"""Showing keys to a buyer: in a message behind spoilers, or as a .txt document when there are many."""

from __future__ import annotations

import html
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.types import BufferedInputFile

from core.models import Order, Product
from handlers.telegram.ui.text import shop_time, tr

MAX_KEYS_IN_MESSAGE = 10
MAX_MESSAGE_CHARS = 3500


async def send_keys(
    bot: Bot, chat_id: int | str, order: Order, product: Product, keys: list[str], timezone: ZoneInfo
) -> None:
    """The keys of ``order``; a membership's end in the shop's time zone (``timezone``: SHOP_TIMEZONE)."""
    head = tr("delivery-keys", ref=order.ref, name=product.name, qty=order.quantity)
    tail = ""
    if order.membership_expires_at is not None:
        tail = "\n" + tr("delivery-valid-until", date=shop_time(order.membership_expires_at, timezone))
    body = "\n".join(f"<tg-spoiler><code>{html.escape(k)}</code></tg-spoiler>" for k in keys)
    if len(keys) <= MAX_KEYS_IN_MESSAGE and len(head) + len(body) + len(tail) < MAX_MESSAGE_CHARS:
        await bot.send_message(chat_id, f"{head}\n\n{body}{tail}")
        return
    data = ("\n".join(keys) + "\n").encode()
    await bot.send_document(
        chat_id,
        BufferedInputFile(data, filename=f"keys-{order.ref}.txt"),
        caption=f"{head}\n{tr('delivery-file', count=len(keys))}{tail}",
    )
