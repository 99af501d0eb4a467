"""How the back office shows orders: one order in full (with the buttons its state and the admin's role
allow), and a page of a list of orders with a button to open each and ◀️ N/M ▶️ to turn the pages."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Literal

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from core.models import DeliveryKind, Order, OrderStatus
from core.repositories.desk import DeskLine, ListKind
from core.roles import Grant, Power
from core.services.order_desk import OrderDetail, OrderList
from core.services.refunds import owed_by_hand
from handlers.money import format_amount
from handlers.telegram.admin.common import action_label, back_to_menu
from handlers.telegram.ui.callbacks import MAX_PAGE, OrderAct, OrderActCb, OrderListCb, OrderViewCb
from handlers.telegram.ui.text import clip, tr, tr_plain

LIST_CODES: dict[ListKind, Literal["p", "b", "i"]] = {"pending": "p", "buyer": "b", "import": "i"}
LIST_KINDS: dict[str, ListKind] = {code: kind for kind, code in LIST_CODES.items()}

# Which actions an order's state allows, and the power each needs (checked again when tapped).
ACTIONS: dict[OrderAct, tuple[Power, frozenset[OrderStatus]]] = {
    "deliver": (Power.ORDERS, frozenset({OrderStatus.PAID})),  # manual-delivery products only
    "resend": (Power.ORDERS, frozenset({OrderStatus.DELIVERED})),
    "cancel": (Power.ORDERS, frozenset({OrderStatus.PENDING})),
    "refund": (Power.MONEY, frozenset({OrderStatus.PAID, OrderStatus.DELIVERED})),
    "paid": (Power.MONEY, frozenset({OrderStatus.PENDING, OrderStatus.EXPIRED, OrderStatus.CANCELLED})),
    # any state with a charge owed back that only an admin can return (fiat, marked paid): see applies()
    "byhand": (Power.MONEY, frozenset(OrderStatus)),
}


def applies(act: OrderAct, detail: OrderDetail) -> bool:
    """Whether ``act`` fits the order as it is now (its state, for "deliver" its delivery kind, for
    "byhand" a charge still owed back by hand)."""
    _, states = ACTIONS[act]
    if act == "byhand":
        return bool(owed_by_hand(detail.payments))
    if act == "deliver" and detail.product.delivery_kind is not DeliveryKind.MANUAL:
        return False
    return detail.order.status in states


def owed_text(d: OrderDetail) -> str:
    """What the admin must have returned by hand: each such charge's amount."""
    return ", ".join(format_amount(p.amount, p.currency) for p in owed_by_hand(d.payments))


def when(at: datetime | None, tz: tzinfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if at is not None else "—"


def short(charge_id: str) -> str:
    return charge_id if len(charge_id) <= 16 else f"{charge_id[:8]}…{charge_id[-4:]}"


def amount(order: Order) -> str:
    return format_amount(order.amount, order.currency)


def order_text(d: OrderDetail, tz: tzinfo) -> str:
    o = d.order
    lines = [
        tr("admin-order-title", ref=o.ref, status=tr_plain(f"status-{o.status.value}")),
        tr("admin-order-product", id=d.product.id, name=d.product.name, qty=o.quantity, amount=amount(o)),
        tr("admin-order-buyer", who=d.buyer.external_id, id=d.buyer.id),
        tr("admin-order-times", created=when(o.created_at, tz), paid=when(o.paid_at, tz)),
        tr("admin-order-delivered", delivered=when(o.delivered_at, tz), revealed=when(o.revealed_at, tz)),
    ]
    if d.keys:
        lines.append(tr("admin-order-keys", keys=", ".join(d.keys[:20])))
    lines.append(tr("admin-order-payments"))
    lines += [
        tr(
            "admin-order-payment",
            provider=p.provider,
            charge=short(p.charge_id),
            amount=format_amount(p.amount, p.currency),
            status=p.status.value,
        )
        + (tr("admin-order-payment-commission") if p.earns_commission else "")
        for p in d.payments
    ] or [tr("admin-order-none")]
    lines.append(tr("admin-order-trail"))
    lines += [
        tr("admin-order-trail-line", at=when(e.at, tz), actor=e.actor, action=action_label(e.action))
        for e in d.trail
    ] or [tr("admin-order-none")]
    return "\n".join(lines)


def order_markup(d: OrderDetail, grant: Grant) -> InlineKeyboardMarkup:
    ref = d.order.ref
    buttons = [
        InlineKeyboardButton(
            text=tr_plain(f"admin-btn-order-{act}"), callback_data=OrderActCb(ref=ref, act=act).pack()
        )
        for act, (power, _) in ACTIONS.items()
        if grant.may(power) and applies(act, d)
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    refresh = InlineKeyboardButton(
        text=tr_plain("admin-btn-order-refresh"), callback_data=OrderViewCb(ref=ref).pack()
    )
    rows.append([refresh, back_to_menu()])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def confirm_markup(ref: str, act: OrderAct) -> InlineKeyboardMarkup:
    yes = InlineKeyboardButton(
        text=tr_plain(f"admin-btn-order-{act}-sure"),
        callback_data=OrderActCb(ref=ref, act=act, sure=True).pack(),
    )
    back = InlineKeyboardButton(text=tr_plain("button-back"), callback_data=OrderViewCb(ref=ref).pack())
    return InlineKeyboardMarkup(inline_keyboard=[[yes], [back]])


def line_label(ln: DeskLine) -> str:
    o = ln.order
    return clip(f"{o.ref} · {tr_plain(f'status-{o.status.value}')} · {ln.product_name} × {o.quantity}", 60)


def list_text(found: OrderList, title: str, tz: tzinfo) -> str:
    lines = [title]
    for ln in found.lines:
        o = ln.order
        lines.append(
            tr(
                "admin-orders-line",
                ref=o.ref,
                status=tr_plain(f"status-{o.status.value}"),
                name=ln.product_name,
                qty=o.quantity,
                amount=amount(o),
                who=ln.buyer_external_id,
                at=when(o.created_at, tz),
            )
        )
    if not found.lines:
        lines.append(tr("admin-orders-none"))
    return "\n".join(lines)


def list_markup(found: OrderList) -> InlineKeyboardMarkup:
    rows = [
        [InlineKeyboardButton(text=line_label(ln), callback_data=OrderViewCb(ref=ln.order.ref).pack())]
        for ln in found.lines
    ]
    if found.newer or found.older:
        rows.append(page_row(found))
    rows.append([back_to_menu()])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def page_row(found: OrderList) -> list[InlineKeyboardButton]:
    """◀️ N/M ▶️: ◀️ the page just newer than this one's first order, N/M this page again (from its first
    order), ▶️ the page older than its last order."""
    kind, key, page = LIST_CODES[found.kind], found.key, found.page

    def button(text: str, page: int, at: int, back: bool = False) -> InlineKeyboardButton:
        data = OrderListCb(kind=kind, key=key, page=page, at=at, back=back).pack()
        return InlineKeyboardButton(text=text, callback_data=data)

    first = found.lines[0].order.id if found.lines else 0
    here = button(f"{page + 1}/{found.pages}", page=page, at=first + 1 if first and page else 0)
    row = [here]
    if found.newer and first:
        row.insert(0, button("◀️", page=max(page - 1, 0), at=first, back=True))
    if found.older and found.lines and page < MAX_PAGE:
        row.append(button("▶️", page=page + 1, at=found.lines[-1].order.id))
    return row
