"""The category form of the editor (what the CLI's ``category add`` takes: name, description, position)
and the category list, with an Edit button per category."""

from __future__ import annotations

from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from core.models import Category
from core.services import Services
from core.services.drafts import new_token
from handlers.telegram.admin.forms import MAX_INT, NONE, Data, Form, whole
from handlers.telegram.ui.callbacks import AdminCb, EditCategoryCb, EditorCb
from handlers.telegram.ui.text import BUTTON_TEXT_MAX, clip, tr, tr_plain

MAX_LISTED = 40  # categories listed with a button (Telegram: at most 100 buttons per keyboard)


class CategoryForm(Form):
    kind = "category"
    steps_all = ("name", "description", "position")
    nullable = frozenset({"description"})

    @staticmethod
    def new() -> Data:
        draft = {"name": "", "description": "", "position": 0}
        return {"form": "category", "mode": "new", "id": None, "token": new_token(), "draft": draft}

    @staticmethod
    def editing(c: Category) -> Data:
        draft = {"name": c.name, "description": c.description, "position": c.position}
        return {
            "form": "category",
            "mode": "edit",
            "id": c.id,
            "token": new_token(),
            "draft": draft,
            "was": c.name,
        }

    def params(self, services: Services) -> dict[str, Any]:
        return {"max": MAX_INT}

    def clear(self, data: Data, step: str) -> None:
        data["draft"]["description"] = ""

    def can_keep(self, data: Data, step: str) -> bool:
        return step != "name" or bool(data["draft"]["name"])

    async def parse(self, services: Services, data: Data, step: str, text: str) -> None:
        d = data["draft"]
        if not self.parse_named(d, step, text):
            d["position"] = whole(text, -MAX_INT, MAX_INT, "ae-bad-position", max=MAX_INT)

    async def shown(self, services: Services, data: Data, step: str) -> str:
        value = data["draft"][step]
        return clip(str(value), 60) if value != "" else NONE

    def title(self, data: Data) -> str:
        if data["mode"] == "new":
            return tr("ae-category-new-title")
        return tr("ae-category-edit-title", id=data["id"], name=data["was"])

    async def preview(self, services: Services, data: Data) -> str:
        lines = [self.title(data), ""]
        for step in self.steps_all:
            label = tr_plain(f"ae-field-{step}")
            lines.append(tr("ae-preview-line", field=label, value=await self.shown(services, data, step)))
        return "\n".join(lines)

    async def save(self, services: Services, data: Data, actor: str) -> tuple[str, InlineKeyboardMarkup]:
        d = data["draft"]
        if data["mode"] == "new":
            cid, _ = await services.drafts.create_category(
                d["name"], d["description"], d["position"], token=data["token"], actor=actor
            )
        else:
            cid = data["id"]
            changes = {f: d[f] for f in self.steps_all if f in data["changed"]}
            await services.catalog.update_category(cid, actor=actor, **changes)
        return tr("ae-category-saved", id=cid, name=d["name"]), self.leave_markup()

    def leave_markup(self) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup(inline_keyboard=[[categories_button()]])


def categories_button() -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=tr_plain("ae-btn-categories"), callback_data=EditorCb(action="cats").pack()
    )


def categories_screen(cats: list[Category]) -> tuple[str, InlineKeyboardMarkup]:
    """The category list: one Edit button per category, New category, and Back to the products."""
    lines = [tr("ae-categories-title")]
    lines += [tr("ae-category-line", id=c.id, name=c.name, position=c.position) for c in cats[:MAX_LISTED]]
    if len(cats) > MAX_LISTED:
        lines.append(tr("admin-stock-more", count=len(cats) - MAX_LISTED))
    if not cats:
        lines.append(tr("ae-categories-none"))
    lines += ["", tr("ae-categories-usage")]
    rows = [
        [
            InlineKeyboardButton(
                text=clip(tr_plain("ae-btn-edit-category", id=c.id, name=c.name), BUTTON_TEXT_MAX),
                callback_data=EditCategoryCb(category_id=c.id).pack(),
            )
        ]
        for c in cats[:MAX_LISTED]
    ]
    rows.append(
        [
            InlineKeyboardButton(
                text=tr_plain("ae-btn-new-category"), callback_data=EditorCb(action="newcat").pack()
            )
        ]
    )
    rows.append(
        [InlineKeyboardButton(text=tr_plain("button-back"), callback_data=AdminCb(screen="products").pack())]
    )
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)
