"""Keys uploaded in chat. A staff member with the stock power (owners, admins, operators within their scope)
sends a ``.txt`` or ``.csv`` document with the caption ``/import ID``, or without one and then picks the
product from buttons (only products in their scope that keep stock).

The bot downloads the file through the Bot API (``getFile`` and the file URL: bots may download up to 20 MB,
so a bigger file is sent to the CLI), checks it whole (``importer.check_whole``: empty, not UTF-8, a CSV of
uneven columns are refused and nothing is imported), and imports it with the CLI's importer
(``StockService.import_keys``). One message shows the progress (keys read, rate, time left), edited at most
every 2 s (``progress.ProgressMessage``), then the report: added, duplicates, invalid lines with their
numbers (the first few in the message, all of them in a .txt document when there are more).

A file waiting for its product is remembered in the staff member's FSM data under its picker's message id
(a few at a time): a picker imports its own file, never one sent after it, and only once however often it
is tapped at once (FSM data has no lock: the picker is claimed once, ``CursorService.create_once``). A
plain document is taken for an upload only outside any other conversation (another screen's step may
expect a document). Handlers take ``progress_clock`` from the dispatcher's workflow data when given (tests
observe the edits with it)."""

from __future__ import annotations

import asyncio
import io
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    Document,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from core import importer
from core.errors import ShopError, StockNotKept
from core.models import DeliveryKind, ImportReport, Product
from core.roles import Grant, Power
from core.services import Services
from handlers.telegram.admin.common import actor, not_permitted, reaches
from handlers.telegram.admin.filters import Has
from handlers.telegram.admin.progress import ProgressMessage
from handlers.telegram.filters import When
from handlers.telegram.ui.callbacks import MAX_ID, StockCancelCb, StockImportCb
from handlers.telegram.ui.files import DOCUMENT_MAX_BYTES, capped_lines
from handlers.telegram.ui.text import BUTTON_TEXT_MAX, acknowledge, redraw, refusal, tr, tr_plain

DOWNLOAD_MAX = 20 * 2**20  # what bots may download through getFile
FORMATS = {".txt": "txt", ".csv": "csv"}
PENDING = "stock_uploads"  # FSM data: the files waiting for their product, by their picker's message id
WAITING_MAX = 5  # files kept waiting at once (the oldest pickers are forgotten first)
PICK_MAX = 30  # product buttons under one message
INLINE_INVALID = 10  # invalid lines listed in the report itself; more go to a file
LISTED_INVALID = 100_000  # invalid lines listed in that file (all are counted)
_ID = re.compile(r"[1-9][0-9]{0,18}")


@dataclass(frozen=True, slots=True)
class Upload:
    """A document to import, as Telegram described it."""

    file_id: str
    name: str
    size: int
    fmt: str


def _product_id(text: str) -> int | None:
    return int(text) if _ID.fullmatch(text) and int(text) <= MAX_ID else None


def _upload(doc: Document) -> Upload | str:
    """The upload, or the HTML answer that refuses it (wrong type, too big for a bot to download)."""
    name = (doc.file_name or "")[:128]
    fmt = FORMATS.get(PurePosixPath(name).suffix.lower())
    if fmt is None:
        return tr("admin-upload-type")
    if (doc.file_size or 0) > DOWNLOAD_MAX:
        return tr("admin-upload-too-big", size=f"{(doc.file_size or 0) / 2**20:.1f}")
    return Upload(doc.file_id, name, doc.file_size or 0, fmt)


# ---------------------------------------------------------------- handlers


async def import_with_caption(
    message: Message,
    command: CommandObject,
    grant: Grant,
    services: Services,
    bot: Bot,
    state: FSMContext,
    progress_clock: Callable[[], float] = time.monotonic,
) -> None:
    """Receives: a document with the caption ``/import ID`` (or ``/import`` alone: pick the product)."""
    assert message.document is not None
    args = (command.args or "").strip()
    pid = _product_id(args)
    if args and pid is None:
        await message.answer(tr("admin-import-usage"))
        return
    upload = _upload(message.document)
    if isinstance(upload, str):
        await message.answer(upload)
        return
    if pid is None:
        await _ask_for_product(message, grant, services, state, upload)
        return
    product = await services.catalog.product(pid)
    if not reaches(grant, product):
        await not_permitted(message, services, message.caption or "")
        return
    sent = tr("admin-import-downloading", id=product.id, name=product.name, file=upload.name)
    progress = ProgressMessage(await message.answer(sent), sent, clock=progress_clock)
    await _import(message, progress, grant, services, bot, product, upload)


async def plain_upload(message: Message, grant: Grant, services: Services, state: FSMContext) -> None:
    """Receives: a document without ``/import`` (outside any other conversation): pick its product."""
    assert message.document is not None
    upload = _upload(message.document)
    if isinstance(upload, str):
        await message.answer(upload)
        return
    await _ask_for_product(message, grant, services, state, upload)


async def import_usage(message: Message) -> None:
    """Receives: ``/import`` as a text (keys come as a file)."""
    await message.answer(tr("admin-import-usage"))


async def picked(
    query: CallbackQuery,
    callback_data: StockImportCb,
    grant: Grant,
    services: Services,
    bot: Bot,
    state: FSMContext,
    progress_clock: Callable[[], float] = time.monotonic,
) -> None:
    """Receives: a product button under a waiting upload."""
    product = await services.catalog.product(callback_data.product_id)
    if not reaches(grant, product):
        await not_permitted(query, services, query.data or "")
        return
    await acknowledge(query)
    waiting = await _take(query.message.message_id, state) if isinstance(query.message, Message) else None
    if waiting is None or not isinstance(query.message, Message):
        await redraw(query, tr("admin-import-nothing-waiting"))
        return
    # FSM data has no lock (in Redis two taps may both find the file): the picker is claimed once
    if not await services.cursors.create_once(f"upload:{actor(query)}:{query.message.message_id}"[:64]):
        return
    upload = Upload(**waiting)
    sent = tr("admin-import-downloading", id=product.id, name=product.name, file=upload.name)
    await redraw(query, sent)
    progress = ProgressMessage(query.message, sent, clock=progress_clock)
    await _import(query, progress, grant, services, bot, product, upload)


async def cancel(query: CallbackQuery, callback_data: StockCancelCb, state: FSMContext) -> None:
    """Receives: Cancel under a waiting upload, void or export."""
    await acknowledge(query)
    if callback_data.what == "import" and isinstance(query.message, Message):
        await _take(query.message.message_id, state)
    await redraw(query, tr("admin-cancelled"))


def _waiting(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    pending = data.get(PENDING)
    return dict(pending) if isinstance(pending, dict) else {}


async def _take(picker_id: int, state: FSMContext) -> dict[str, Any] | None:
    """The file waiting under the picker ``picker_id``, no longer waiting."""
    data = await state.get_data()
    pending = _waiting(data)
    waiting = pending.pop(str(picker_id), None)
    await state.update_data({PENDING: pending})
    return waiting if isinstance(waiting, dict) else None


# ---------------------------------------------------------------- the import


async def _ask_for_product(
    message: Message, grant: Grant, services: Services, state: FSMContext, upload: Upload
) -> None:
    products = [
        p
        for p in await services.catalog.products()
        if p.delivery_kind is DeliveryKind.UNIQUE and reaches(grant, p)
    ]
    if not products:
        await message.answer(tr("admin-import-pick-none"))
        return
    rows = [
        [
            InlineKeyboardButton(
                text=tr_plain("admin-btn-product", id=p.id, name=p.name, limit=BUTTON_TEXT_MAX),
                callback_data=StockImportCb(product_id=p.id).pack(),
            )
        ]
        for p in products[:PICK_MAX]
    ]
    cancel = StockCancelCb(what="import").pack()
    rows.append([InlineKeyboardButton(text=tr_plain("admin-btn-cancel"), callback_data=cancel)])
    text = tr("admin-import-pick", file=upload.name)
    if len(products) > PICK_MAX:
        text += "\n" + tr("admin-import-pick-more", count=PICK_MAX)
    picker = await message.answer(text, reply_markup=InlineKeyboardMarkup(inline_keyboard=rows))
    pending = _waiting(await state.get_data())
    pending[str(picker.message_id)] = asdict(upload)
    await state.update_data({PENDING: dict(list(pending.items())[-WAITING_MAX:])})


async def _import(
    event: Message | CallbackQuery,
    progress: ProgressMessage,
    grant: Grant,
    services: Services,
    bot: Bot,
    product: Product,
    upload: Upload,
) -> None:
    try:
        if product.delivery_kind is not DeliveryKind.UNIQUE:
            raise StockNotKept()
        try:
            data = (await bot.download(upload.file_id, destination=io.BytesIO())).getvalue()  # type: ignore[union-attr]
        except TelegramBadRequest as e:
            if "file is too big" not in e.message.lower():
                raise
            await progress.finish(tr("admin-upload-too-big", size=f"{upload.size / 2**20:.1f}"))
            return
        await asyncio.to_thread(importer.check_whole, data, upload.fmt)
        report = await _run(progress, grant, services, product, upload, data, event)
    except ShopError as e:
        await progress.finish(refusal(e, plain=False))
        return
    except Exception:  # the error handler reports it; the progress message must not promise more
        await progress.finish(tr("admin-import-failed"))
        raise
    await progress.finish(_report(product, report))
    if report.invalid > INLINE_INVALID:
        await _send_invalid_lines(progress.message, report)


async def _run(
    progress: ProgressMessage,
    grant: Grant,
    services: Services,
    product: Product,
    upload: Upload,
    data: bytes,
    event: Message | CallbackQuery,
) -> ImportReport:
    stream = io.BytesIO(data)
    started = progress.clock()

    def show(rep: ImportReport) -> None:
        elapsed = max(progress.clock() - started, 1e-3)
        read = max(stream.tell(), 1)
        progress.offer(
            tr(
                "admin-import-progress",
                id=product.id,
                name=product.name,
                done=f"{rep.lines:,}",
                percent=min(100, read * 100 // max(len(data), 1)),
                rate=f"{int(rep.lines / elapsed):,}",
                eta=max(0, round(elapsed * (len(data) - read) / read)),
            )
        )

    return await services.stock.import_keys(
        product.id,
        stream,
        fmt=upload.fmt,
        actor=actor(event),
        progress=show,
        grant=grant,
        samples=LISTED_INVALID,
    )


def _reason(reason: str) -> str:
    known = ("blank", "too_long", "undecodable", "malformed", "control", "bidi")
    return tr_plain(f"admin-import-reason-{reason}" if reason in known else "admin-import-reason-invalid")


def _report(product: Product, rep: ImportReport) -> str:
    lines = [
        tr(
            "admin-import-report",
            import_id=rep.import_id,
            id=product.id,
            name=product.name,
            lines=f"{rep.lines:,}",
            added=f"{rep.added:,}",
            duplicates=f"{rep.duplicates:,}",
            invalid=f"{rep.invalid:,}",
        )
    ]
    for bad in rep.invalid_samples[:INLINE_INVALID]:
        lines.append("• " + tr("admin-import-invalid-line", line=bad.line, reason=_reason(bad.reason)))
    if rep.invalid > INLINE_INVALID:
        lines.append(tr("admin-import-invalid-file"))
    return "\n".join(lines)


async def _send_invalid_lines(message: Message, rep: ImportReport) -> None:
    """Every invalid line (up to ``LISTED_INVALID``) with its reason, as a .txt document."""
    rows = [
        tr_plain("admin-import-invalid-line", line=b.line, reason=_reason(b.reason))
        for b in rep.invalid_samples
    ]
    body = capped_lines(  # within what a bot may send, the rest counted on a last line
        rows,
        lambda n: tr_plain("admin-import-invalid-more", count=f"{n:,}"),
        omitted=rep.invalid - len(rep.invalid_samples),
        limit=DOCUMENT_MAX_BYTES,
    )
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    document = BufferedInputFile(body, filename=f"invalid-lines-import-{rep.import_id}-{stamp}.txt")
    await message.answer_document(
        document, caption=tr("admin-import-invalid-caption", import_id=rep.import_id)
    )


def build() -> Router:
    router = Router(name=__name__)
    router.message.filter(Has(Power.STOCK))
    router.callback_query.filter(Has(Power.STOCK))
    router.message.register(import_with_caption, Command("import"), When(F.document))
    router.message.register(import_usage, Command("import"))
    router.message.register(plain_upload, When(F.document), StateFilter(None))
    router.callback_query.register(picked, StockImportCb.filter())
    router.callback_query.register(cancel, StockCancelCb.filter())
    return router
