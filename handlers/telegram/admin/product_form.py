"""The product form of the editor: every field the CLI's ``product add`` takes, how it is asked and read,
and the preview, which is the buyer's card of the draft (``ui.cards``) plus what only staff see (among
them the product's own commission rates, which buyers never see)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from core.errors import InvalidInput, ShopError
from core.models import STARS, DeliveryKind, Product
from core.rates import commission_rates_bp, format_rates
from core.services import Services
from core.services.catalog import MAX_QTY_PER_ORDER, MAX_VALIDITY_DAYS, ProductDraft, invoice_max
from core.services.drafts import new_token
from handlers.money import format_amount, parse_amount
from handlers.telegram.admin.forms import MAX_INT, NONE, Bad, Data, Form, whole
from handlers.telegram.ui.callbacks import AdminCb, EditorCb, EditProductCb
from handlers.telegram.ui.cards import card_text
from handlers.telegram.ui.text import BUTTON_TEXT_MAX, clip, tr, tr_plain

MAX_LIMIT_HOURS = 24 * 366
_USER_LIMIT = re.compile(r"([0-9]{1,10})\s*(?:/|\s)\s*([0-9]{1,4})")
# The draft's fields (ProductDraft's, as JSON values) and where a refusal of one sends the admin.
_FIELD_STEP = {
    "name": "name",
    "description": "description",
    "category_id": "category",
    "price": "price",
    "price_stars": "price_stars",
    "validity_days": "validity_days",
    "min_qty": "min_qty",
    "max_qty": "max_qty",
    "low_stock_threshold": "low_stock_threshold",
    "user_limit": "user_limit",
    "daily_limit": "daily_limit",
    "commission_rates": "commission",
}
# What a field the admin set changes in ``update_product`` (the shared key is saved apart).
_STEP_FIELDS = {
    "category": ("category_id",),
    "user_limit": ("user_limit", "user_limit_hours"),
    "commission": ("commission_rates",),
}


def _draft(values: Data) -> ProductDraft:
    return ProductDraft(**{**values, "delivery_kind": DeliveryKind(values["delivery_kind"])})


def _values(draft: ProductDraft) -> Data:
    return {**dataclasses.asdict(draft), "delivery_kind": draft.delivery_kind.value}


def _yes_no(value: bool) -> str:
    return tr_plain("ae-yes" if value else "ae-no")


def _percentages(rates_bp: tuple[int, ...] | list[int]) -> str:
    """``(1000, 250)`` -> ``10%, 2.5%``."""
    return ", ".join(f"{p}%" for p in format_rates(tuple(rates_bp)).split(","))


class ProductForm(Form):
    kind = "product"
    steps_all = (
        "name",
        "description",
        "category",
        "price",
        "price_stars",
        "delivery_kind",
        "shared_key",
        "validity_days",
        "min_qty",
        "max_qty",
        "user_limit",
        "daily_limit",
        "requires_phone",
        "low_stock_threshold",
        "commission",
        "active",
    )
    nullable = frozenset(
        {"description", "category", "validity_days", "user_limit", "daily_limit", "commission"}
    )
    secret = frozenset({"shared_key"})

    @staticmethod
    def new() -> Data:
        return {
            "form": "product",
            "mode": "new",
            "id": None,
            "token": new_token(),
            "draft": _values(ProductDraft(name="")),
            "secret": None,
            "changed": [],
            "walk": True,
        }

    @staticmethod
    def editing(product: Product) -> Data:
        return {
            "form": "product",
            "mode": "edit",
            "id": product.id,
            "token": new_token(),
            "draft": _values(ProductDraft.of(product)),
            "secret": None,
            "changed": [],
            "walk": False,
            "was": product.name,
            "was_kind": product.delivery_kind.value,
        }

    def steps(self, data: Data) -> list[str]:
        shared = data["draft"]["delivery_kind"] == DeliveryKind.SHARED.value
        return [s for s in self.steps_all if shared or s != "shared_key"]

    def params(self, services: Services) -> dict[str, Any]:
        cfg = services.ctx.config
        return {
            "currency": cfg.currency,
            "example": format_amount(990, cfg.currency) if cfg.currency_exponent else "990",
            "max_price": format_amount(invoice_max(cfg.currency, cfg.currency_exponent), cfg.currency),
            "max_stars": invoice_max(STARS),
            "max_qty": MAX_QTY_PER_ORDER,
            "max_days": MAX_VALIDITY_DAYS,
            "max_hours": MAX_LIMIT_HOURS,
            "rates": _percentages(cfg.commission_rates),
        }

    async def choices(self, services: Services, data: Data, step: str) -> list[tuple[str, str]]:
        if step == "category":
            cats = await services.catalog.categories(active_only=False)
            return [(str(c.id), clip(c.name, BUTTON_TEXT_MAX)) for c in cats[:30]]
        if step == "delivery_kind":
            return [(k.value, tr_plain(f"ae-kind-{k.value}")) for k in DeliveryKind]
        if step in ("requires_phone", "active"):
            return [("yes", tr_plain("ae-yes")), ("no", tr_plain("ae-no"))]
        return []

    def choose(self, data: Data, step: str, value: str) -> None:
        d = data["draft"]
        if step == "category":
            d["category_id"] = int(value)
        elif step == "delivery_kind":
            d["delivery_kind"] = value
            if value != DeliveryKind.SHARED.value:
                data["secret"] = None
        else:
            d[step] = value == "yes"

    def clear(self, data: Data, step: str) -> None:
        d = data["draft"]
        if step == "description":
            d["description"] = ""
        elif step == "category":
            d["category_id"] = None
        elif step == "user_limit":
            d["user_limit"] = d["user_limit_hours"] = None
        elif step == "commission":
            d["commission_rates"] = None  # the shop's rates
        else:
            d[step] = None

    def can_keep(self, data: Data, step: str) -> bool:
        if step == "name":
            return bool(data["draft"]["name"])
        if step == "shared_key":
            return data["secret"] is not None or data.get("was_kind") == DeliveryKind.SHARED.value
        return True

    async def parse(self, services: Services, data: Data, step: str, text: str) -> None:
        d, p = data["draft"], self.params(services)
        cfg = services.ctx.config
        if self.parse_named(d, step, text):
            return
        if step == "category":
            cid = whole(text, 1, MAX_INT, "ae-bad-category")
            if cid not in {c.id for c in await services.catalog.categories(active_only=False)}:
                raise Bad("ae-bad-category")
            d["category_id"] = cid
        elif step == "price":
            try:
                amount = parse_amount(text, cfg.currency)
            except InvalidInput:
                raise Bad("ae-bad-price", **p) from None
            if amount > invoice_max(cfg.currency, cfg.currency_exponent):
                raise Bad("ae-bad-price", **p)
            d["price"] = amount
        elif step == "price_stars":
            stars = whole(text, 0, invoice_max(STARS), "ae-bad-price_stars", **p)
            if stars == 0 and d["price"] == 0:
                raise Bad("ae-bad-no-price")
            d["price_stars"] = stars
        elif step == "shared_key":
            await self._seal(services, data, text)
        elif step == "validity_days":
            d["validity_days"] = whole(text, 1, MAX_VALIDITY_DAYS, "ae-bad-validity_days", **p)
        elif step == "min_qty":
            d["min_qty"] = whole(text, 1, MAX_QTY_PER_ORDER, "ae-bad-min_qty", **p)
        elif step == "max_qty":
            d["max_qty"] = whole(text, d["min_qty"], MAX_QTY_PER_ORDER, "ae-bad-max_qty", **p)
        elif step == "user_limit":
            m = _USER_LIMIT.fullmatch(text.strip())
            if (
                m is None
                or not 1 <= int(m.group(1)) <= MAX_INT
                or not 1 <= int(m.group(2)) <= MAX_LIMIT_HOURS
            ):
                raise Bad("ae-bad-user_limit", **p)
            d["user_limit"], d["user_limit_hours"] = int(m.group(1)), int(m.group(2))
        elif step == "daily_limit":
            d["daily_limit"] = whole(text, 1, MAX_INT, "ae-bad-daily_limit")
        elif step == "low_stock_threshold":
            d["low_stock_threshold"] = whole(text, 0, MAX_INT, "ae-bad-low_stock_threshold")
        elif step == "commission":
            try:
                d["commission_rates"] = list(commission_rates_bp(text.strip()[:64]))
            except ValueError:
                raise Bad("ae-bad-commission") from None
        else:  # a step with buttons only
            raise Bad("ae-bad-choice")

    async def _seal(self, services: Services, data: Data, text: str) -> None:
        try:
            sealed, masked = services.drafts.seal_key(data["token"], text)
        except ShopError as e:
            if isinstance(e, InvalidInput) and e.key == InvalidInput.key:
                raise Bad("ae-bad-shared_key") from None
            raise  # a key with control or bidi characters: its own explanation
        data["secret"] = {"sealed": sealed, "masked": masked}

    async def shown(self, services: Services, data: Data, step: str) -> str:
        d = data["draft"]
        cfg = services.ctx.config
        if step == "description":
            return clip(d["description"], 60) or NONE
        if step == "category":
            if d["category_id"] is None:
                return NONE
            cats = {c.id: c.name for c in await services.catalog.categories(active_only=False)}
            return cats.get(d["category_id"], f"#{d['category_id']}")
        if step == "price":
            return format_amount(d["price"], cfg.currency) if d["price"] else NONE
        if step == "price_stars":
            return format_amount(d["price_stars"], STARS) if d["price_stars"] else NONE
        if step == "delivery_kind":
            return tr_plain(f"ae-kind-{d['delivery_kind']}")
        if step == "shared_key":
            if data["secret"] is not None:
                return str(data["secret"]["masked"])
            return tr_plain("ae-key-unchanged") if data.get("was_kind") == "shared" else NONE
        if step == "validity_days":
            return tr_plain("ae-days", days=d["validity_days"]) if d["validity_days"] else NONE
        if step == "user_limit":
            if d["user_limit"] is None:
                return NONE
            return tr_plain("ae-user-limit-value", limit=d["user_limit"], hours=d["user_limit_hours"])
        if step in ("requires_phone", "active"):
            return _yes_no(d[step])
        if step == "commission":
            rates = d["commission_rates"]
            if rates is None:
                return tr_plain("ae-commission-default", rates=_percentages(cfg.commission_rates))
            return _percentages(rates) if any(rates) else tr_plain("ae-commission-none")
        value = d[step]
        return NONE if value is None or value == "" else str(value)

    def next_after(self, data: Data, step: str) -> str | None:
        shared = data["draft"]["delivery_kind"] == DeliveryKind.SHARED.value
        if step == "delivery_kind" and shared and not self.can_keep(data, "shared_key"):
            return "shared_key"  # a shared-key product is not saved without its key
        return None

    async def check(self, services: Services, data: Data) -> tuple[str, str] | None:
        d = data["draft"]
        if d["delivery_kind"] == DeliveryKind.SHARED.value and not self.can_keep(data, "shared_key"):
            return "shared_key", "ae-bad-shared_key"
        cfg = services.ctx.config
        try:
            _draft(d).validate(cfg.currency, cfg.currency_exponent)
        except InvalidInput as e:
            if d["price"] == 0 and d["price_stars"] == 0:
                return "price", "ae-bad-no-price"
            step = _FIELD_STEP.get(str(e.params.get("field")), "name")
            return step, f"ae-bad-{step}"
        return None

    def title(self, data: Data) -> str:
        if data["mode"] == "new":
            return tr("ae-product-new-title")
        return tr("ae-product-edit-title", id=data["id"], name=data["was"])

    async def preview(self, services: Services, data: Data) -> str:
        cfg = services.ctx.config
        draft = _draft(data["draft"]).validate(cfg.currency, cfg.currency_exponent)
        pid = data["id"] or 0
        product = Product(id=pid, created_at=services.ctx.clock.now(), **dataclasses.asdict(draft))
        stock: int | None = None
        if draft.delivery_kind is DeliveryKind.UNIQUE:
            stock = (await services.catalog.card(pid))[1] if pid else 0
        staff_only = ["category", "price", "delivery_kind", "low_stock_threshold", "commission", "active"]
        if draft.delivery_kind is DeliveryKind.SHARED:
            staff_only.insert(3, "shared_key")
        lines = [tr("ae-preview-title"), "", card_text(product, stock), "", tr("ae-preview-staff")]
        for step in staff_only:
            label = tr_plain(f"ae-field-{step}")
            lines.append(tr("ae-preview-line", field=label, value=await self.shown(services, data, step)))
        return "\n".join(lines)

    async def save(self, services: Services, data: Data, actor: str) -> tuple[str, InlineKeyboardMarkup]:
        sealed = data["secret"]["sealed"] if data["secret"] else None
        if data["mode"] == "new":
            pid, _ = await services.drafts.create_product(
                _draft(data["draft"]), token=data["token"], sealed_key=sealed, actor=actor
            )
        else:
            pid = data["id"]
            fields = {f for step in data["changed"] for f in _STEP_FIELDS.get(step, (step,))}
            fields.discard("shared_key")
            changes: dict[str, Any] = {f: data["draft"][f] for f in sorted(fields)}
            if "delivery_kind" in changes:
                changes["delivery_kind"] = DeliveryKind(changes["delivery_kind"])
            await services.drafts.edit_product(
                pid, changes, token=data["token"], sealed_key=sealed, actor=actor
            )
        product, available = await services.catalog.card(pid)
        stock = available if product.delivery_kind is DeliveryKind.UNIQUE else None
        text = tr("ae-product-saved", id=pid) + "\n\n" + card_text(product, stock)
        rows = [
            [
                InlineKeyboardButton(
                    text=tr_plain("ae-btn-edit", id=pid), callback_data=EditProductCb(product_id=pid).pack()
                ),
                _products_button(),
            ]
        ]
        return text, InlineKeyboardMarkup(inline_keyboard=rows)

    def leave_markup(self) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup(inline_keyboard=[[_products_button()]])


def _products_button() -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=tr_plain("admin-btn-products"), callback_data=AdminCb(screen="products").pack()
    )


def new_product_button() -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=tr_plain("ae-btn-new-product"), callback_data=EditorCb(action="new").pack()
    )
