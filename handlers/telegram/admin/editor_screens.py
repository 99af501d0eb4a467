"""The editor's screens: what each moment of a guided conversation shows (a step's question with its
choices, the field list, the preview) and how the conversation moves from one to the next. The handlers
that receive the admin's taps and text are in ``editor``; the fields themselves are the forms'
(``product_form``, ``category_form``)."""

from __future__ import annotations

from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from core.services import Services
from handlers.telegram.admin.category_form import CategoryForm
from handlers.telegram.admin.forms import Data, Editing, Form
from handlers.telegram.admin.product_form import ProductForm
from handlers.telegram.ui.callbacks import EditorCb, EditorChoiceCb, EditorFieldCb
from handlers.telegram.ui.text import (
    BUTTON_TEXT_MAX,
    CALLBACK_ANSWER_MAX,
    acknowledge,
    clip,
    show,
    tr,
    tr_plain,
)

FORMS: dict[str, Form] = {"product": ProductForm(), "category": CategoryForm()}
Event = Message | CallbackQuery


def _button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=clip(text, BUTTON_TEXT_MAX), callback_data=data)


def _back_cancel() -> list[InlineKeyboardButton]:
    return [
        _button(tr_plain("button-back"), EditorCb(action="back").pack()),
        _button(tr_plain("ae-btn-cancel"), EditorCb(action="cancel").pack()),
    ]


async def stale(query: CallbackQuery) -> None:
    """A tap on a button that belongs to no step now: the stale-button alert."""
    await acknowledge(query, tr_plain("error-stale-button", limit=CALLBACK_ANSWER_MAX), show_alert=True)


async def current(state: FSMContext) -> tuple[Form, Data] | None:
    """The form and draft of the conversation under way, or None (none, or one from an older bot)."""
    data = await state.get_data()
    form = FORMS.get(str(data.get("form")))
    return (form, data) if form is not None else None


async def tapped(query: CallbackQuery, state: FSMContext) -> tuple[Form, Data] | None:
    """The conversation a button of it was tapped in, or None once the tap got the stale-button alert."""
    found = await current(state)
    if found is None:
        await stale(query)
    return found


async def ask(
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


async def field_list(event: Event, services: Services, state: FSMContext, form: Form, data: Data) -> None:
    """The list of fields to change."""
    await state.set_state(Editing.fields)
    await state.set_data(data)
    buttons = [_button(tr_plain(f"ae-field-{s}"), EditorFieldCb(field=s).pack()) for s in form.steps(data)]  # type: ignore[arg-type]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append(_back_cancel())
    await show(
        event, form.title(data) + "\n\n" + tr("ae-choose-field"), InlineKeyboardMarkup(inline_keyboard=rows)
    )


async def preview(
    event: Event, services: Services, state: FSMContext, form: Form, data: Data, note: str = ""
) -> None:
    """The draft as it will be saved, or the field that keeps it from being saved, asked again."""
    problem = await form.check(services, data)
    if problem is not None:
        step, key = problem
        data["walk"] = False
        await ask(event, services, state, form, data, step, tr(key, **form.params(services)))
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


async def advance(event: Event, services: Services, state: FSMContext, form: Form, data: Data) -> None:
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
        await ask(event, services, state, form, data, following)
    else:
        await preview(event, services, state, form, data)


async def begin(event: Event, services: Services, state: FSMContext, data: Data) -> None:
    """Start a conversation on a fresh draft: a new one walks its steps, an edit opens the field list."""
    data.setdefault("changed", [])
    data.setdefault("walk", data["mode"] == "new")
    form = FORMS[data["form"]]
    await state.clear()
    if data["mode"] == "new":
        await ask(event, services, state, form, data, form.steps(data)[0])
    else:
        await field_list(event, services, state, form, data)
