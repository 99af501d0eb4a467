"""Typed callback data: every button's payload is parsed and validated by aiogram, never split by hand.
Telegram caps callback data at 64 bytes; each of these stays far below."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class MenuCb(CallbackData, prefix="m"):
    action: str  # catalog | orders | language | help


class CategoryCb(CallbackData, prefix="c"):
    category_id: int  # 0: all products


class ProductCb(CallbackData, prefix="p"):
    product_id: int


class QuantityCb(CallbackData, prefix="q"):
    product_id: int


class BuyCb(CallbackData, prefix="b"):
    product_id: int
    qty: int
    fiat: bool = False  # pay in SHOP_CURRENCY through the configured provider instead of Stars


class OrdersCb(CallbackData, prefix="o"):
    page: int


class RevealCb(CallbackData, prefix="k"):
    ref: str


class CancelCb(CallbackData, prefix="x"):
    ref: str


class LanguageCb(CallbackData, prefix="l"):
    code: str
