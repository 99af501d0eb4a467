"""Keys in stock, one by one: ``/void ID KEY`` (one key by its value), ``/void ID batch IMPORT_ID`` (the keys
of one import still in stock), both within the stock power and an operator's scope; ``/export ID`` (owners
only): the product's unsold keys as a .txt document. Each asks for a confirmation first (with the count);
reserved and sold keys are never voided this way. The rules, the audit and the once-only export are
``core.services.keys``'; the exported file is built in memory and sent once, never stored."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from core.errors import ExportAlreadySent, ExportTooLarge
from core.models import KeyStatus, Product
from core.roles import Grant, Power
from core.services import Services
from core.vault import mask
from handlers.telegram.admin.common import actor, not_permitted, reaches
from handlers.telegram.admin.filters import Has
from handlers.telegram.ui.callbacks import (
    MAX_ID,
    StockCancelCb,
    StockExportCb,
    StockVoidBatchCb,
    StockVoidKeyCb,
)
from handlers.telegram.ui.files import DOCUMENT_MAX_BYTES
from handlers.telegram.ui.text import acknowledge, redraw, refusal, tr, tr_plain

_ID = r"[1-9][0-9]{0,18}"
_VOID_BATCH = re.compile(rf"({_ID})\s+batch\s+({_ID})", re.IGNORECASE)
_VOID_KEY = re.compile(rf"({_ID})\s+(\S.{{0,1999}})", re.DOTALL)
_ONE_ID = re.compile(_ID)
_BATCH_WORD = re.compile(rf"{_ID}\s+batch(\s|$)", re.IGNORECASE)  # "batch" with no import id: usage


def _bounded(text: str) -> int | None:
    return int(text) if int(text) <= MAX_ID else None


def _confirm(label: str, data: str, what: str) -> InlineKeyboardMarkup:
    cancel = StockCancelCb(what=what).pack()  # type: ignore[arg-type]
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=label, callback_data=data)],
            [InlineKeyboardButton(text=tr_plain("admin-btn-cancel"), callback_data=cancel)],
        ]
    )


async def _reached(
    event: Message | CallbackQuery, grant: Grant, services: Services, product_id: int
) -> Product | None:
    """The product, if the staff member's scope reaches it; else they are told so (audited)."""
    product = await services.catalog.product(product_id)
    if reaches(grant, product):
        return product
    what = event.text if isinstance(event, Message) else event.data
    await not_permitted(event, services, what or "")
    return None


# ---------------------------------------------------------------- void


async def void(message: Message, command: CommandObject, grant: Grant, services: Services) -> None:
    """Receives: /void ID KEY and /void ID batch IMPORT_ID."""
    args = (command.args or "").strip()
    batch = _VOID_BATCH.fullmatch(args)
    one = _VOID_KEY.fullmatch(args) if batch is None and not _BATCH_WORD.match(args) else None
    pid = _bounded((batch or one).group(1)) if (batch or one) else None  # type: ignore[union-attr]
    if pid is None or (batch is not None and _bounded(batch.group(2)) is None):
        await message.answer(tr("admin-void-usage"))
        return
    product = await _reached(message, grant, services, pid)
    if product is None:
        return
    if batch is not None:
        await _ask_void_batch(message, grant, services, product, int(batch.group(2)))
        return
    assert one is not None
    found = await services.keys.find(pid, one.group(2), grant=grant)
    shown = {"key": mask(one.group(2).strip()), "id": product.id, "name": product.name}
    if found.status is KeyStatus.AVAILABLE:
        data = StockVoidKeyCb(product_id=pid, key_id=found.key_id).pack()
        markup = _confirm(tr_plain("admin-btn-void"), data, "void")
        await message.answer(tr("admin-void-confirm-key", **shown), reply_markup=markup)
    elif found.status is KeyStatus.VOID:
        await message.answer(tr("admin-void-already", **shown))
    else:
        status = tr_plain(f"admin-key-status-{found.status.value}")
        await message.answer(tr("admin-void-held", status=status, **shown))


async def _ask_void_batch(
    message: Message, grant: Grant, services: Services, product: Product, import_id: int
) -> None:
    batch = await services.keys.batch(product.id, import_id, grant=grant)
    shown = {"import_id": import_id, "id": product.id, "name": product.name, "held": batch.held}
    if not batch.available:
        await message.answer(tr("admin-void-batch-empty", **shown))
        return
    data = StockVoidBatchCb(product_id=product.id, import_id=import_id).pack()
    markup = _confirm(tr_plain("admin-btn-void-count", count=batch.available), data, "void")
    await message.answer(
        tr("admin-void-confirm-batch", available=batch.available, **shown), reply_markup=markup
    )


async def void_key_confirmed(
    query: CallbackQuery, callback_data: StockVoidKeyCb, grant: Grant, services: Services
) -> None:
    """Receives: the Void button under a key's confirmation."""
    product = await _reached(query, grant, services, callback_data.product_id)
    if product is None:
        return
    await acknowledge(query)
    voided = await services.keys.void_key(product.id, callback_data.key_id, grant=grant, actor=actor(query))
    await _voided(query, product, voided)


async def void_batch_confirmed(
    query: CallbackQuery, callback_data: StockVoidBatchCb, grant: Grant, services: Services
) -> None:
    """Receives: the Void button under an import batch's confirmation."""
    product = await _reached(query, grant, services, callback_data.product_id)
    if product is None:
        return
    await acknowledge(query)
    voided = await services.keys.void_batch(
        product.id, callback_data.import_id, grant=grant, actor=actor(query)
    )
    await _voided(query, product, voided)


async def _voided(query: CallbackQuery, product: Product, voided: int) -> None:
    if voided:
        await redraw(query, tr("admin-voided", count=voided, id=product.id, name=product.name))
    else:
        await redraw(query, tr("admin-voided-none"))


# ---------------------------------------------------------------- export (owners)


async def export(message: Message, command: CommandObject, grant: Grant, services: Services) -> None:
    """Receives: /export ID."""
    args = (command.args or "").strip()
    pid = _bounded(args) if _ONE_ID.fullmatch(args) else None
    if pid is None:
        await message.answer(tr("admin-export-usage"))
        return
    product, count = await services.keys.unsold(pid, grant=grant)
    shown = {"count": count, "id": product.id, "name": product.name}
    if not count:
        await message.answer(tr("admin-export-none", **shown))
        return
    markup = _confirm(
        tr_plain("admin-btn-export", count=count), StockExportCb(product_id=pid).pack(), "export"
    )
    await message.answer(tr("admin-export-confirm", **shown), reply_markup=markup)


async def export_confirmed(
    query: CallbackQuery, callback_data: StockExportCb, grant: Grant, services: Services
) -> None:
    """Receives: the Export button under an export's confirmation. The confirmation message's id numbers
    the request: it is honoured once (a second tap, or an older confirmation, sends nothing)."""
    await acknowledge(query)
    if query.message is None:
        return
    pid = callback_data.product_id
    try:  # too big for one document: refused before anything is claimed, revealed or audited
        keys = await services.keys.export(
            pid,
            grant=grant,
            actor=actor(query),
            request=query.message.message_id,
            max_bytes=DOCUMENT_MAX_BYTES,
        )
    except (ExportAlreadySent, ExportTooLarge) as e:
        await redraw(query, refusal(e, plain=False))
        return
    product = await services.catalog.product(pid)
    shown = {"count": len(keys), "id": product.id, "name": product.name}
    body = ("\n".join(keys) + "\n").encode() if keys else b"\n"
    del keys
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    document = BufferedInputFile(body, filename=f"keys-{pid}-{stamp}.txt")
    assert query.bot is not None
    await query.bot.send_document(query.from_user.id, document, caption=tr("admin-export-caption", **shown))
    await redraw(query, tr("admin-export-sent", **shown))


def build() -> Router:
    router = Router(name=__name__)
    voids = Router(name=f"{__name__}.void")
    voids.message.filter(Has(Power.STOCK))
    voids.callback_query.filter(Has(Power.STOCK))
    voids.message.register(void, Command("void"))
    voids.callback_query.register(void_key_confirmed, StockVoidKeyCb.filter())
    voids.callback_query.register(void_batch_confirmed, StockVoidBatchCb.filter())
    exports = Router(name=f"{__name__}.export")
    exports.message.filter(Has(Power.EXPORT))
    exports.callback_query.filter(Has(Power.EXPORT))
    exports.message.register(export, Command("export"))
    exports.callback_query.register(export_confirmed, StockExportCb.filter())
    router.include_routers(voids, exports)
    return router
