"""Typed callback data: every button's payload is parsed and validated by aiogram, never split by hand.
Telegram caps callback data at 64 bytes; each of these stays far below.

Anyone can send any callback data, so every field is bounded: a value out of range (or not plain ASCII
digits, e.g. ``²`` or ``１２``) makes aiogram's filter refuse the data, and the tap gets the "stale button"
answer instead of reaching a handler (or the database) with an integer it cannot store."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from aiogram.filters.callback_data import CallbackData
from pydantic import AfterValidator, BeforeValidator, Field, model_validator

MAX_ID = 2**63 - 1  # the largest id a BIGINT column holds
MAX_PAGE = 10_000
MAX_QTY = 10_000
_ASCII_INT = re.compile(r"0|[1-9][0-9]{0,18}")
_REF = r"^[A-Za-z0-9_-]{1,32}$"


def _ascii_int(value: object) -> object:
    """Only what ``str(int)`` produces: no signs, spaces, underscores, other scripts' digits."""
    if isinstance(value, str) and not _ASCII_INT.fullmatch(value):
        raise ValueError("not a plain decimal number")
    return value


Id = Annotated[int, BeforeValidator(_ascii_int), Field(ge=1, le=MAX_ID)]
IdOrZero = Annotated[int, BeforeValidator(_ascii_int), Field(ge=0, le=MAX_ID)]
Page = Annotated[int, BeforeValidator(_ascii_int), Field(ge=0, le=MAX_PAGE)]
Qty = Annotated[int, BeforeValidator(_ascii_int), Field(ge=1, le=MAX_QTY)]
Ref = Annotated[str, Field(pattern=_REF)]


class MenuCb(CallbackData, prefix="m"):
    action: Literal["catalog", "orders", "language", "help"]


class CatalogCb(CallbackData, prefix="cp"):
    """A page of the category list."""

    page: Page = 0


class CategoryCb(CallbackData, prefix="c"):
    category_id: IdOrZero  # 0: all products
    page: Page = 0


class ProductCb(CallbackData, prefix="p"):
    product_id: Id


class QuantityCb(CallbackData, prefix="q"):
    product_id: Id


class BuyCb(CallbackData, prefix="b"):
    product_id: Id
    qty: Qty
    fiat: bool = False  # pay in SHOP_CURRENCY through the configured provider instead of Stars


class RenewCb(CallbackData, prefix="rn"):
    """Renew under a membership reminder: buy the same product again (quantity, way of paying), as Buy
    does. Its own prefix because a refusal must not redraw the reminder as a product card (``BuyCb``'s
    refusal does): the reminder, its end date and this button stay for later."""

    product_id: Id
    qty: Qty
    fiat: bool = False


class OrdersCb(CallbackData, prefix="o"):
    page: Page


class RevealCb(CallbackData, prefix="k"):
    ref: Ref


class CancelCb(CallbackData, prefix="x"):
    ref: Ref


class PayBalanceCb(CallbackData, prefix="pb"):
    """Pay an order from the shop balance: ``ask`` shows the confirmation, ``go`` pays, ``back`` returns
    from the confirmation to the offer."""

    ref: Ref
    step: Literal["ask", "go", "back"]


class LanguageCb(CallbackData, prefix="l"):
    code: Annotated[str, Field(max_length=16)]


Currency = Annotated[str, Field(pattern=r"^(?:[A-Z]{3})?$")]  # ISO 4217 or XTR; "" where none applies


class WithdrawCb(CallbackData, prefix="w"):
    """/withdraw: ``open`` the screen, ``pick`` a currency to withdraw, ``go``: confirm the request,
    ``stop``: leave without asking."""

    action: Literal["open", "pick", "go", "stop"]
    currency: Currency = ""

    @model_validator(mode="after")
    def _currency(self) -> WithdrawCb:
        if (self.action in ("pick", "go")) != bool(self.currency):
            raise ValueError("pick and go name a currency; open and stop none")
        return self


class InviteCb(CallbackData, prefix="i"):
    """The /invite dashboard again (Refresh), showing page ``page`` of the distributor's commissions."""

    page: Page = 0


# ---------------------------------------------------------------- admin screens (prefixes start with "a")

ADMIN_PREFIX = "a"  # every admin button's data starts with it, so a forged one is recognised as such


class AdminCb(CallbackData, prefix="am"):
    """A screen of the /admin menu."""

    screen: Literal[
        "menu",
        "staff",
        "stock",
        "products",
        "orders",
        "buyers",
        "stats",
        "audit",
        "broadcast",
        "distributors",
    ]


class StaffRemoveCb(CallbackData, prefix="asr"):
    """Take a staff member (by Telegram id) off the staff."""

    tg_id: Id


class OrderViewCb(CallbackData, prefix="aov"):
    """Open one order in the back office."""

    ref: Ref


OrderAct = Literal["deliver", "resend", "refund", "cancel", "paid", "byhand"]  # byhand: a refund made by hand


class OrderActCb(CallbackData, prefix="aoa"):
    """An admin's action on one order: asked first (``sure`` False), done when confirmed."""

    ref: Ref
    act: OrderAct
    sure: bool = False


class OrderInputCb(CallbackData, prefix="aoi"):
    """Confirm the payment typed for "mark paid" (``paid``; ``paid_commission``: and the buyer's referrers
    earn commission on it), or stop waiting for the admin's input."""

    ref: Ref
    act: Literal["paid", "paid_commission", "stop"]


class OrderListCb(CallbackData, prefix="aol"):
    """A page of a back-office order list: ``kind`` (p: pending, b: a buyer's, i: an import batch's) and
    its ``key`` (0 for pending; the buyer's shop user id or the import's id, at least 1); the page starts
    after order ``at`` (0: the newest page), or with ``back`` is the page just newer than order ``at``."""

    kind: Literal["p", "b", "i"]
    key: IdOrZero
    page: Page
    at: IdOrZero = 0
    back: bool = False

    @model_validator(mode="after")
    def _keyed(self) -> OrderListCb:
        if (self.kind == "p") != (self.key == 0) or (self.back and self.at == 0):
            raise ValueError("pending has no key; a buyer's or an import's list has one; back needs at")
        return self


def _period(value: int) -> int:
    if value not in (1, 7, 30):
        raise ValueError("a report covers 1, 7 or 30 days")
    return value


Days = Annotated[int, BeforeValidator(_ascii_int), AfterValidator(_period)]


class StatsCb(CallbackData, prefix="ats"):
    """/stats for the last ``days`` shop days; ``chart``: send that period's chart as a photo."""

    days: Days
    chart: bool = False


AUDIT_QUERY = r"^[A-Za-z0-9_.-]{0,40}$"  # an order reference, or an actor with ":" written as "."


class AuditPageCb(CallbackData, prefix="aap"):
    """A page of /audit (0: the newest), of every entry, or of one order's or one actor's."""

    page: Page
    by: Literal["all", "order", "actor"] = "all"
    q: Annotated[str, Field(pattern=AUDIT_QUERY)] = ""


class BroadcastAudienceCb(CallbackData, prefix="aba"):
    """A broadcast's audience: all buyers, buyers of a product (0: choose it), buyers active lately."""

    kind: Literal["all", "product", "active"]
    product_id: IdOrZero = 0


class BroadcastCb(CallbackData, prefix="abc"):
    """A broadcast's draft (go: send it, edit: new text, drop: discard) or, once running, stop."""

    action: Literal["go", "edit", "drop", "stop"]
    broadcast_id: Id


# Stock in chat (prefixes "ak…"): uploads waiting for their product, voids and exports awaiting confirmation.


class StockImportCb(CallbackData, prefix="aki"):
    """Import the file waiting for its product (sent without ``/import ID``) into this product."""

    product_id: Id


class StockCancelCb(CallbackData, prefix="akc"):
    """Drop a waiting upload, or a void or export awaiting confirmation."""

    what: Literal["import", "void", "export"]


class StockVoidKeyCb(CallbackData, prefix="akv"):
    """Confirm voiding one key (found by its value) of a product."""

    product_id: Id
    key_id: Id


class StockVoidBatchCb(CallbackData, prefix="akb"):
    """Confirm voiding the keys one import brought to a product that are still in stock."""

    product_id: Id
    import_id: Id


class StockExportCb(CallbackData, prefix="akx"):
    """Confirm exporting a product's unsold keys (honoured once: see ``core.services.keys``)."""

    product_id: Id


# The product and category editor (handlers.telegram.admin.editor): prefixes "ae…".
EDITOR_FIELDS = Literal[
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
    "position",
]


class EditorCb(CallbackData, prefix="aen"):
    """A button of the editor: a step's Back / Cancel / Keep / None, the preview's Save and Edit field,
    and the screens that start a conversation (new product, categories, new category)."""

    action: Literal["back", "cancel", "keep", "clear", "save", "fields", "new", "cats", "newcat"]


class EditorChoiceCb(CallbackData, prefix="aev"):
    """One of the current step's choices (a delivery kind, yes/no, a category id or "none")."""

    value: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,20}$")]


class EditorFieldCb(CallbackData, prefix="aef"):
    """The field to change, chosen from the list."""

    field: EDITOR_FIELDS


class EditProductCb(CallbackData, prefix="aep"):
    product_id: Id


class EditCategoryCb(CallbackData, prefix="aec"):
    category_id: Id


# The payout queue (handlers.telegram.admin.payouts): prefix "apo".
PayoutAct = Literal["list", "approve", "reject", "paid", "rejectok", "paidok", "stop"]


class PayoutCb(CallbackData, prefix="apo"):
    """A button of /payouts: a page of the queue (``list``, no request), or an action on one request:
    approve; reject and paid ask for a reason or a reference, ``rejectok`` / ``paidok`` confirm what was
    typed, ``stop`` stops waiting for it. ``page``: the queue page to show afterwards."""

    action: PayoutAct
    payout_id: IdOrZero = 0
    page: Page = 0

    @model_validator(mode="after")
    def _target(self) -> PayoutCb:
        if (self.action == "list") != (self.payout_id == 0):
            raise ValueError("a page names no request; an action names one")
        return self


# Distributors (handlers.telegram.admin.distributors): prefixes "adi…".
CURRENCY = r"^[A-Z]{3}$"  # ISO 4217, or XTR for Stars


class DistributorsCb(CallbackData, prefix="adi"):
    """A page of /distributors, ranked by what was earned in ``currency``."""

    currency: Annotated[str, Field(pattern=CURRENCY)]
    page: Page = 0


class DistributorCb(CallbackData, prefix="adic"):
    """One distributor's card (``act`` "show"), or an action on it: set their rates (asked next), block or
    unblock (``sure`` False: asked first)."""

    user_id: Id
    act: Literal["show", "rates", "block", "unblock"] = "show"
    sure: bool = False
