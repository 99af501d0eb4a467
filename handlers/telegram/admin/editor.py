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
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from core.errors import ProductNotFound, ShopError
from core.roles import Power
from core.services import Services
from handlers.telegram.admin.category_form import CategoryForm, categories_screen
from handlers.telegram.admin.common import actor, not_permitted
from handlers.telegram.admin.filters import Has
from handlers.telegram.admin.forms import Bad, Data, Editing, Form
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
from handlers.telegram.ui.text import (
    BUTTON_TEXT_MAX,
    CALLBACK_ANSWER_MAX,
    acknowledge,
    clip,
    redraw,
    refusal,
    show,
    tr,
    tr_plain,
)

log = logging.getLogger(__name__)

FORMS: dict[str, Form] = {"product": ProductForm(), "category": CategoryForm()}
Event = Message | CallbackQuery


def _button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=clip(text, BUTTON_TEXT_MAX), callback_data=data)


def _back_cancel() -> list[InlineKeyboardButton]:
    return [
        _button(tr_plain("button-back"), EditorCb(action="back").pack()),
        _button(tr_plain("ae-btn-cancel"), EditorCb(action="cancel").pack()),
    ]


async def _stale(query: CallbackQuery) -> None:
    await acknowledge(query, tr_plain("error-stale-button", limit=CALLBACK_ANSWER_MAX), show_alert=True)


async def _current(state: FSMContext) -> tuple[Form, Data] | None:
    data = await state.get_data()
    form = FORMS.get(str(data.get("form")))
    return (form, data) if form is not None else None


# ---------------------------------------------------------------- the screens of a conversation


async def _ask(
    event: Event, services: Services, state: FSMContext, form: Form, data: Data, step: str, error: str = ""
) -> None:
    """Ask for ``step`` (after ``error``, the explanation of a refused value)."""
    data["step"] = step
    await state.set_state(Editing.value)
    await state.set_data(data)
    steps = form.steps(data)
    head = form.title(data)
    if data["mode"] == "new" and step in steps:
        head += " · " + tr("ae-step", n=steps.index(step) + 1, total=len(steps))
    lines = [head]
    if error:
        lines += ["", "⚠️ " + error]
    shown = await form.shown(services, data, step)
    lines += ["", tr(f"ae-ask-{form.kind}-{step}", **form.params(services)), tr("ae-now", value=shown)]
    choices = await form.choices(services, data, step)
    rows = [[_button(label, EditorChoiceCb(value=v).pack())] for v, label in choices]
    extra = []
    if form.can_keep(data, step):
        extra.append(_button(tr_plain("ae-btn-keep", value=shown), EditorCb(action="keep").pack()))
    if step in form.nullable:
        extra.append(_button(tr_plain("ae-btn-clear"), EditorCb(action="clear").pack()))
    if extra:
        rows.append(extra)
    rows.append(_back_cancel())
    await show(event, "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows))


async def _fields(event: Event, services: Services, state: FSMContext, form: Form, data: Data) -> None:
    """The list of fields to change."""
    await state.set_state(Editing.fields)
    await state.set_data(data)
    buttons = [_button(tr_plain(f"ae-field-{s}"), EditorFieldCb(field=s).pack()) for s in form.steps(data)]  # type: ignore[arg-type]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append(_back_cancel())
    await show(
        event, form.title(data) + "\n\n" + tr("ae-choose-field"), InlineKeyboardMarkup(inline_keyboard=rows)
    )


async def _preview(
    event: Event, services: Services, state: FSMContext, form: Form, data: Data, note: str = ""
) -> None:
    """The draft as it will be saved, or the field that keeps it from being saved, asked again."""
    problem = await form.check(services, data)
    if problem is not None:
        step, key = problem
        data["walk"] = False
        await _ask(event, services, state, form, data, step, tr(key, **form.params(services)))
        return
    await state.set_state(Editing.preview)
    await state.set_data(data)
    text = await form.preview(services, data)
    rows = [
        [
            _button(tr_plain("ae-btn-save"), EditorCb(action="save").pack()),
            _button(tr_plain("ae-btn-fields"), EditorCb(action="fields").pack()),
        ],
        _back_cancel(),
    ]
    await show(event, (f"⚠️ {note}\n\n" if note else "") + text, InlineKeyboardMarkup(inline_keyboard=rows))


async def _advance(event: Event, services: Services, state: FSMContext, form: Form, data: Data) -> None:
    """A value was given for the step asked: the next step (a new draft), else the preview."""
    step = str(data["step"])
    if step not in data["changed"]:
        data["changed"].append(step)
    following = form.next_after(data, step)
    if following is None and data["walk"]:
        steps = form.steps(data)
        at = steps.index(step) if step in steps else len(steps)
        following = steps[at + 1] if at + 1 < len(steps) else None
    if following is not None:
        await _ask(event, services, state, form, data, following)
    else:
        await _preview(event, services, state, form, data)


async def _begin(event: Event, services: Services, state: FSMContext, data: Data) -> None:
    data.setdefault("changed", [])
    data.setdefault("walk", data["mode"] == "new")
    form = FORMS[data["form"]]
    await state.clear()
    if data["mode"] == "new":
        await _ask(event, services, state, form, data, form.steps(data)[0])
    else:
        await _fields(event, services, state, form, data)


# ---------------------------------------------------------------- handlers


async def new_product(event: Event, services: Services, state: FSMContext) -> None:
    """Receives: /newproduct and the products screen's New product button."""
    await _begin(event, services, state, ProductForm.new())


async def edit_command(
    message: Message, command: CommandObject, services: Services, state: FSMContext
) -> None:
    """Receives: /edit <product id>."""
    arg = (command.args or "").strip()
    if not arg.isascii() or not arg.isdigit() or not 1 <= int(arg) <= MAX_ID:
        await message.answer(tr("ae-edit-usage"))
        return
    product = await services.catalog.product(int(arg))  # an unknown id: "no longer exists"
    await _begin(message, services, state, ProductForm.editing(product))


async def edit_button(
    query: CallbackQuery, callback_data: EditProductCb, services: Services, state: FSMContext
) -> None:
    """Receives: an Edit button of the products screen (or of a saved product)."""
    try:
        product = await services.catalog.product(callback_data.product_id)
    except ProductNotFound:
        await _stale(query)
        return
    await _begin(query, services, state, ProductForm.editing(product))


async def categories(event: Event, services: Services) -> None:
    """Receives: /categories and the products screen's Categories button."""
    await show(event, *categories_screen(await services.catalog.categories(active_only=False)))


async def new_category(event: Event, services: Services, state: FSMContext) -> None:
    """Receives: /newcategory and the category list's New category button."""
    await _begin(event, services, state, CategoryForm.new())


async def edit_category(
    query: CallbackQuery, callback_data: EditCategoryCb, services: Services, state: FSMContext
) -> None:
    """Receives: an Edit button of the category list."""
    cats = {c.id: c for c in await services.catalog.categories(active_only=False)}
    category = cats.get(callback_data.category_id)
    if category is None:
        await _stale(query)
        return
    await _begin(query, services, state, CategoryForm.editing(category))


async def value_text(message: Message, services: Services, state: FSMContext) -> None:
    """Receives: the text an admin sends while a step waits for a value."""
    current = await _current(state)
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
        await _ask(
            message, services, state, form, data, step, tr(bad.key, **{**form.params(services), **bad.params})
        )
        return
    except ShopError as e:
        await _ask(message, services, state, form, data, step, refusal(e, plain=False))
        return
    await _advance(message, services, state, form, data)


async def value_choice(
    query: CallbackQuery, callback_data: EditorChoiceCb, services: Services, state: FSMContext
) -> None:
    """Receives: a choice button of the step asked."""
    current = await _current(state)
    if current is None:
        await _stale(query)
        return
    form, data = current
    step = str(data["step"])
    if callback_data.value not in {v for v, _ in await form.choices(services, data, step)}:
        await _stale(query)
        return
    form.choose(data, step, callback_data.value)
    await _advance(query, services, state, form, data)


async def keep_or_clear(
    query: CallbackQuery, callback_data: EditorCb, services: Services, state: FSMContext
) -> None:
    """Receives: Keep (the value shown) or None, on the step asked."""
    current = await _current(state)
    if current is None:
        await _stale(query)
        return
    form, data = current
    step = str(data["step"])
    if callback_data.action == "clear":
        if step not in form.nullable:
            await _stale(query)
            return
        form.clear(data, step)
    elif not form.can_keep(data, step):
        await _stale(query)
        return
    await _advance(query, services, state, form, data)


async def back(query: CallbackQuery, services: Services, state: FSMContext, raw_state: str | None) -> None:
    """Receives: Back, at a step (the previous one), the field list or the preview."""
    current = await _current(state)
    if current is None:
        await _stale(query)
        return
    form, data = current
    if raw_state == Editing.value.state:
        steps = form.steps(data)
        step = str(data["step"])
        if not data["walk"]:
            await _fields(query, services, state, form, data)
        elif step in steps and steps.index(step) > 0:
            await _ask(query, services, state, form, data, steps[steps.index(step) - 1])
        else:
            await cancel(query, state)
    elif raw_state == Editing.fields.state:
        await _preview(query, services, state, form, data)
    elif data["mode"] == "new":
        data["walk"] = True
        await _ask(query, services, state, form, data, form.steps(data)[-1])
    else:
        await _fields(query, services, state, form, data)


async def cancel(query: CallbackQuery, state: FSMContext) -> None:
    """Receives: Cancel, anywhere in a conversation: nothing is saved."""
    current = await _current(state)
    await state.clear()
    markup = current[0].leave_markup() if current else None
    await show(query, tr("ae-cancelled"), markup)


async def fields(query: CallbackQuery, services: Services, state: FSMContext) -> None:
    """Receives: the preview's Edit field."""
    current = await _current(state)
    if current is None:
        await _stale(query)
        return
    await _fields(query, services, state, *current)


async def pick_field(
    query: CallbackQuery, callback_data: EditorFieldCb, services: Services, state: FSMContext
) -> None:
    """Receives: a field of the field list."""
    current = await _current(state)
    if current is None or callback_data.field not in current[0].steps(current[1]):
        await _stale(query)
        return
    form, data = current
    data["walk"] = False
    await _ask(query, services, state, form, data, callback_data.field)


async def save(query: CallbackQuery, services: Services, state: FSMContext) -> None:
    """Receives: the preview's Save. A second tap of the same draft saves nothing more."""
    current = await _current(state)
    if current is None:
        await _stale(query)
        return
    await acknowledge(query)
    form, data = current
    try:
        text, markup = await form.save(services, data, actor(query))
    except ShopError as e:  # e.g. a delivery kind that cannot change under open orders
        await _preview(query, services, state, form, data, note=refusal(e, plain=False))
        return
    await state.clear()
    await redraw(query, text, markup)


async def stale(query: CallbackQuery) -> None:
    """Receives: an editor button that belongs to no step now (an old message, forged data)."""
    await _stale(query)


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
