"""What the editor's conversations share (``editor.py`` drives them): the states, the refusal of a value,
and ``Form``, the fields of one kind of thing (a product, a category) and how each is asked, read, shown,
checked and saved.

A conversation's data lives in the dispatcher's FSM storage, in memory or in Redis, so it holds only
JSON-able values: ``form`` (which Form), ``mode`` ("new" or "edit"), ``id`` (what is edited), ``token``
(the draft's, which makes Save idempotent), ``draft`` (the field values), ``step`` (the field asked),
``walk`` (new: after a value comes the next field; else back to the preview), ``changed`` (the fields the
admin set). A secret (a shared key) is kept only sealed by the core (``DraftService.seal_key``)."""

from __future__ import annotations

import re
from typing import Any

from aiogram.fsm.state import State, StatesGroup
from aiogram.types import InlineKeyboardMarkup

from core.services import Services

Data = dict[str, Any]
MAX_INT = 2**31 - 1  # the INTEGER columns' largest value
_UINT = re.compile(r"[0-9]{1,10}")
_INT = re.compile(r"-?[0-9]{1,10}")
NONE = "—"


class Editing(StatesGroup):
    value = State()  # a field is asked: the admin types its value or taps a choice
    fields = State()  # choosing the field to change
    preview = State()  # the draft as it will be, with Save


class Bad(Exception):
    """A value a step refuses; ``key`` (with ``params``) explains what it takes, and it is asked again."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key, self.params = key, params


def whole(text: str, low: int, high: int, bad: str, **params: Any) -> int:
    """``text`` as a whole number from ``low`` to ``high`` (plain ASCII digits: no ``１２``, no ``1e3``)."""
    text = text.strip()
    if not (_INT if low < 0 else _UINT).fullmatch(text) or not low <= int(text) <= high:
        raise Bad(bad, **params)
    return int(text)


class Form:
    """One kind of thing the editor makes and changes. Subclasses fill in the fields."""

    kind = ""  # "product" | "category": the locale keys' infix and the state's ``form``
    steps_all: tuple[str, ...] = ()
    nullable: frozenset[str] = frozenset()  # fields with a "None" button
    secret: frozenset[str] = frozenset()  # fields whose message is deleted once read

    def steps(self, data: Data) -> list[str]:
        """The fields asked, in order, for this draft."""
        return list(self.steps_all)

    def params(self, services: Services) -> dict[str, Any]:
        """The placeholders of the prompts and refusals (limits, the shop's currency)."""
        return {}

    async def choices(self, services: Services, data: Data, step: str) -> list[tuple[str, str]]:
        """The buttons of a step that has them: (value, label)."""
        return []

    async def parse(self, services: Services, data: Data, step: str, text: str) -> None:
        """Read a typed value into the draft, or raise ``Bad``."""
        raise Bad("ae-bad-choice")

    @staticmethod
    def parse_named(draft: dict[str, Any], step: str, text: str) -> bool:
        """The name (spaces folded, 1 to 64 characters) and description (at most 2000) that products and
        categories share: True when ``step`` was one of them and the value went into the draft."""
        if step == "name":
            name = " ".join(text.split())
            if not 1 <= len(name) <= 64:
                raise Bad("ae-bad-name")
            draft["name"] = name
            return True
        if step == "description":
            if len(text.strip()) > 2000:
                raise Bad("ae-bad-description")
            draft["description"] = text.strip()
            return True
        return False

    def choose(self, data: Data, step: str, value: str) -> None:
        """Put a tapped choice (one of ``choices``) into the draft."""

    def clear(self, data: Data, step: str) -> None:
        """Set a ``nullable`` field to none."""

    def can_keep(self, data: Data, step: str) -> bool:
        return True

    async def shown(self, services: Services, data: Data, step: str) -> str:
        """The field's current value as plain text (escaped where it goes into HTML)."""
        return NONE

    def next_after(self, data: Data, step: str) -> str | None:
        """A field that must be asked right after ``step`` whatever the mode (None: as usual)."""
        return None

    async def check(self, services: Services, data: Data) -> tuple[str, str] | None:
        """(field, refusal key) when the draft as a whole cannot be saved; None when it can."""
        return None

    def title(self, data: Data) -> str:
        raise NotImplementedError

    async def preview(self, services: Services, data: Data) -> str:
        raise NotImplementedError

    async def save(self, services: Services, data: Data, actor: str) -> tuple[str, InlineKeyboardMarkup]:
        """Save the draft; the message and buttons that say so."""
        raise NotImplementedError

    def leave_markup(self) -> InlineKeyboardMarkup:
        """The buttons shown once the conversation is cancelled."""
        raise NotImplementedError
