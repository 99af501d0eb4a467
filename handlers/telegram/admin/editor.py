"""The product and category editor: a guided conversation (aiogram FSM) for everything the CLI can set.

    /newproduct            a new product, a step per field, then its preview (the buyer's card) and Save
    /edit <product id>     choose a field, give its value, preview, Save (the Edit buttons of /products too)
    /categories            the categories, with Edit buttons and New category
    /newcategory           a new category

Every step has Back (the previous step) and Cancel (leave, nothing saved); a value the step refuses is
explained and the step asked again. Nothing is written before Save, and Save is idempotent (the draft's
token: a double tap makes one product). Only staff whose role includes ``Power.PRODUCTS`` get here; the
text they type while a step waits never reaches the buyer's handlers (this router comes first and takes
it), and a buyer's text never reaches these (the admin router passes only staff)."""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from core.errors import ProductNotFound, ShopError
from core.roles import Power
from core.services import Services
from handlers.telegram.admin import editor_screens as screens
from handlers.telegram.admin.category_form import CategoryForm, categories_screen
from handlers.telegram.admin.common import actor, not_permitted
from handlers.telegram.admin.editor_screens import Event
from handlers.telegram.admin.filters import Has
from handlers.telegram.admin.forms import Bad, Editing
from handlers.telegram.admin.product_form import ProductForm
from handlers.telegram.filters import When
from handlers.telegram.ui.callbacks import (
    MAX_ID,
    EditCategoryCb,
    EditorCb,
    EditorChoiceCb,
    EditorFieldCb,
    EditProductCb,
)
from handlers.telegram.ui.text import acknowledge, redraw, refusal, show, tr

log = logging.getLogger(__name__)


async def new_product(event: Event, services: Services, state: FSMContext) -> None:
    """Receives: /newproduct and the products screen's New product button."""
    await screens.begin(event, services, state, ProductForm.new())


async def edit_command(
    message: Message, command: CommandObject, services: Services, state: FSMContext
) -> None:
    """Receives: /edit <product id>."""
    arg = (command.args or "").strip()
    if not arg.isascii() or not arg.isdigit() or not 1 <= int(arg) <= MAX_ID:
        await message.answer(tr("ae-edit-usage"))
        return
    product = await services.catalog.product(int(arg))  # an unknown id: "no longer exists"
    await screens.begin(message, services, state, ProductForm.editing(product))


async def edit_button(
    query: CallbackQuery, callback_data: EditProductCb, services: Services, state: FSMContext
) -> None:
    """Receives: an Edit button of the products screen (or of a saved product)."""
    try:
        product = await services.catalog.product(callback_data.product_id)
    except ProductNotFound:
        await screens.stale(query)
        return
    await screens.begin(query, services, state, ProductForm.editing(product))


async def categories(event: Event, services: Services) -> None:
    """Receives: /categories and the products screen's Categories button."""
    await show(event, *categories_screen(await services.catalog.categories(active_only=False)))


async def new_category(event: Event, services: Services, state: FSMContext) -> None:
    """Receives: /newcategory and the category list's New category button."""
    await screens.begin(event, services, state, CategoryForm.new())


async def edit_category(
    query: CallbackQuery, callback_data: EditCategoryCb, services: Services, state: FSMContext
) -> None:
    """Receives: an Edit button of the category list."""
    cats = {c.id: c for c in await services.catalog.categories(active_only=False)}
    category = cats.get(callback_data.category_id)
    if category is None:
        await screens.stale(query)
        return
    await screens.begin(query, services, state, CategoryForm.editing(category))


async def value_text(message: Message, services: Services, state: FSMContext) -> None:
    """Receives: the text an admin sends while a step waits for a value."""
    current = await screens.current(state)
    if current is None:
        await state.clear()
        return
    form, data = current
    step, text = str(data["step"]), message.text or ""
    if step in form.secret:  # a shared key stays out of the chat history
        try:
            await message.delete()
        except TelegramBadRequest:
            log.info("could not delete the message holding a secret")
    try:
        await form.parse(services, data, step, text)
    except Bad as bad:
        await screens.ask(
            message, services, state, form, data, step, tr(bad.key, **{**form.params(services), **bad.params})
        )
        return
    except ShopError as e:
        await screens.ask(message, services, state, form, data, step, refusal(e, plain=False))
        return
    await screens.advance(message, services, state, form, data)


async def value_choice(
    query: CallbackQuery, callback_data: EditorChoiceCb, services: Services, state: FSMContext
) -> None:
    """Receives: a choice button of the step asked."""
    current = await screens.tapped(query, state)
    if current is None:
        return
    form, data = current
    step = str(data["step"])
    if callback_data.value not in {v for v, _ in await form.choices(services, data, step)}:
        await screens.stale(query)
        return
    form.choose(data, step, callback_data.value)
    await screens.advance(query, services, state, form, data)


async def keep_or_clear(
    query: CallbackQuery, callback_data: EditorCb, services: Services, state: FSMContext
) -> None:
    """Receives: Keep (the value shown) or None, on the step asked."""
    current = await screens.tapped(query, state)
    if current is None:
        return
    form, data = current
    step = str(data["step"])
    if callback_data.action == "clear":
        if step not in form.nullable:
            await screens.stale(query)
            return
        form.clear(data, step)
    elif not form.can_keep(data, step):
        await screens.stale(query)
        return
    await screens.advance(query, services, state, form, data)


async def back(query: CallbackQuery, services: Services, state: FSMContext, raw_state: str | None) -> None:
    """Receives: Back, at a step (the previous one), the field list or the preview."""
    current = await screens.tapped(query, state)
    if current is None:
        return
    form, data = current
    if raw_state == Editing.value.state:
        steps = form.steps(data)
        step = str(data["step"])
        if not data["walk"]:
            await screens.field_list(query, services, state, form, data)
        elif step in steps and steps.index(step) > 0:
            await screens.ask(query, services, state, form, data, steps[steps.index(step) - 1])
        else:
            await cancel(query, state)
    elif raw_state == Editing.fields.state:
        await screens.preview(query, services, state, form, data)
    elif data["mode"] == "new":
        data["walk"] = True
        await screens.ask(query, services, state, form, data, form.steps(data)[-1])
    else:
        await screens.field_list(query, services, state, form, data)


async def cancel(query: CallbackQuery, state: FSMContext) -> None:
    """Receives: Cancel, anywhere in a conversation: nothing is saved."""
    current = await screens.current(state)
    await state.clear()
    markup = current[0].leave_markup() if current else None
    await show(query, tr("ae-cancelled"), markup)


async def fields(query: CallbackQuery, services: Services, state: FSMContext) -> None:
    """Receives: the preview's Edit field."""
    current = await screens.tapped(query, state)
    if current is None:
        return
    await screens.field_list(query, services, state, *current)


async def pick_field(
    query: CallbackQuery, callback_data: EditorFieldCb, services: Services, state: FSMContext
) -> None:
    """Receives: a field of the field list."""
    current = await screens.current(state)
    if current is None or callback_data.field not in current[0].steps(current[1]):
        await screens.stale(query)
        return
    form, data = current
    data["walk"] = False
    await screens.ask(query, services, state, form, data, callback_data.field)


async def save(query: CallbackQuery, services: Services, state: FSMContext) -> None:
    """Receives: the preview's Save. A second tap of the same draft saves nothing more."""
    current = await screens.tapped(query, state)
    if current is None:
        return
    await acknowledge(query)
    form, data = current
    try:
        text, markup = await form.save(services, data, actor(query))
    except ShopError as e:  # e.g. a delivery kind that cannot change under open orders
        await screens.preview(query, services, state, form, data, note=refusal(e, plain=False))
        return
    await state.clear()
    await redraw(query, text, markup)


async def stale(query: CallbackQuery) -> None:
    """Receives: an editor button that belongs to no step now (an old message, forged data)."""
    await screens.stale(query)


async def use_buttons(message: Message) -> None:
    """Receives: text while the field list or the preview waits for a tap."""
    await message.answer(tr("ae-use-buttons"))


async def role_lost(event: Event, services: Services, state: FSMContext) -> None:
    """Receives: a message or tap in a conversation of someone whose role no longer includes products."""
    await state.clear()
    await not_permitted(event, services, "editor")


def build() -> Router:
    router = Router(name=__name__)
    editor = Router(name=f"{__name__}.products")
    editor.message.filter(Has(Power.PRODUCTS))
    editor.callback_query.filter(Has(Power.PRODUCTS))
    m, cb = editor.message.register, editor.callback_query.register
    m(new_product, Command("newproduct"))
    m(edit_command, Command("edit"))
    m(categories, Command("categories"))
    m(new_category, Command("newcategory"))
    cb(new_product, EditorCb.filter(F.action == "new"))
    cb(categories, EditorCb.filter(F.action == "cats"))
    cb(new_category, EditorCb.filter(F.action == "newcat"))
    cb(edit_button, EditProductCb.filter())
    cb(edit_category, EditCategoryCb.filter())
    typed = When(F.text & ~F.text.startswith("/"))
    m(value_text, StateFilter(Editing.value), typed)
    cb(value_choice, StateFilter(Editing.value), EditorChoiceCb.filter())
    cb(keep_or_clear, StateFilter(Editing.value), EditorCb.filter(F.action.in_({"keep", "clear"})))
    cb(back, StateFilter(Editing), EditorCb.filter(F.action == "back"))
    cb(cancel, StateFilter(Editing), EditorCb.filter(F.action == "cancel"))
    cb(fields, StateFilter(Editing.preview), EditorCb.filter(F.action == "fields"))
    cb(pick_field, StateFilter(Editing.fields), EditorFieldCb.filter())
    cb(save, StateFilter(Editing.preview), EditorCb.filter(F.action == "save"))
    m(use_buttons, StateFilter(Editing.fields, Editing.preview), typed)
    cb(stale, When(F.data.startswith("ae")))
    # Staff who lost the products power in the middle of a conversation: their text ends it here.
    lost = Router(name=f"{__name__}.lost")
    lost.message.register(role_lost, StateFilter(Editing), typed, ~Has(Power.PRODUCTS))
    router.include_routers(editor, lost)
    return router
