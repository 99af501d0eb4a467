"""The product card as a buyer sees it: the catalog shows it, and the admins' editor previews a draft with
it."""

from __future__ import annotations

import html

from core.models import Product
from handlers.telegram.ui.text import price, tr


def card_text(p: Product, stock: int | None) -> str:
    """The product card (HTML): the admin's name and description are escaped, never markup."""
    lines = [f"<b>{html.escape(p.name, quote=False)}</b>"]
    if p.description:
        lines.append(html.escape(p.description, quote=False))
    lines.append("")
    lines.append(tr("product-price", price=price(p)))
    if stock == 0:
        lines.append(tr("product-out-of-stock"))
    elif stock is None:
        lines.append(tr("product-always-available"))
    else:
        lines.append(tr("product-stock", stock=stock))
    if p.max_qty > 1 or p.min_qty > 1:
        lines.append(tr("product-quantity-range", min=p.min_qty, max=p.max_qty))
    if p.user_limit and p.user_limit_hours:
        lines.append(tr("product-user-limit", limit=p.user_limit, hours=p.user_limit_hours))
    if p.daily_limit:
        lines.append(tr("product-daily-limit", limit=p.daily_limit))
    if p.validity_days:
        lines.append(tr("product-validity", days=p.validity_days))
    if p.delivery_kind == "manual":
        lines.append(tr("product-manual"))
    if p.requires_phone:
        lines.append(tr("product-phone"))
    return "\n".join(lines)
