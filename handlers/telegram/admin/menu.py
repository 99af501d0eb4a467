"""/admin: the back office's menu, showing only the screens the person's role reaches."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from core.roles import Grant, Power
from handlers.telegram.ui.callbacks import AdminCb
from handlers.telegram.ui.text import show, tr, tr_plain

# Each screen of the menu, the power it needs, and its button's locale key.
SCREENS = (
    ("stock", Power.STOCK, "admin-btn-stock"),
    ("products", Power.PRODUCTS, "admin-btn-products"),
    ("staff", Power.STAFF, "admin-btn-staff"),
    ("orders", Power.ORDERS, "admin-btn-orders"),
    ("buyers", Power.BUYERS, "admin-btn-buyers"),
    ("stats", Power.REPORTS, "admin-btn-stats"),
    ("audit", Power.AUDIT, "admin-btn-audit"),
    ("broadcast", Power.BROADCAST, "admin-btn-broadcast"),
    ("distributors", Power.DISTRIBUTORS, "admin-btn-distributors"),
)


def menu_markup(grant: Grant) -> InlineKeyboardMarkup:
    rows = [
        [InlineKeyboardButton(text=tr_plain(label), callback_data=AdminCb(screen=screen).pack())]  # type: ignore[arg-type]
        for screen, power, label in SCREENS
        if grant.may(power)
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def menu_text(grant: Grant) -> str:
    role = tr(f"admin-role-{grant.role.value}")
    return tr("admin-menu", role=role) + ("\n" + tr("admin-menu-scoped") if grant.scoped else "")


async def admin_menu(event: Message | CallbackQuery, grant: Grant) -> None:
    """Receives: /admin, and the menu's Back button."""
    await show(event, menu_text(grant), menu_markup(grant))


def build() -> Router:
    router = Router(name=__name__)
    router.message.register(admin_menu, Command("admin"))
    router.callback_query.register(admin_menu, AdminCb.filter(F.screen == "menu"))
    return router
