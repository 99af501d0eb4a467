"""Who may do what in the shop's back office: roles, what each may do, and an operator's scope.

- **owner**: the shop's owners (``ADMIN_IDS``): everything.
- **admin**: everything but managing staff, exporting keys and reading the audit trail.
- **operator**: the stock and the orders of the products in their scope (products listed by id, or every
  product of the categories listed); with nothing listed, of every product. Never prices, refunds, buyers,
  broadcasts, reports or distributors: an operator is trusted with goods, not with money.

Pure rules: the channels ask a ``Grant`` before every admin command, button and upload, and services that
take an admin's request re-check the scope against the product they touch."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    OPERATOR = "operator"


class Power(StrEnum):
    """Something an admin screen does."""

    STAFF = "staff"  # add and remove staff
    PRODUCTS = "products"  # create and edit products and categories, prices, on/off sale
    STOCK = "stock"  # upload and void keys, see stock levels
    EXPORT = "export"  # export unsold keys as a file
    ORDERS = "orders"  # see orders, deliver manually, resend, cancel pending
    MONEY = "money"  # refunds and payments received outside Telegram ("mark paid")
    BUYERS = "buyers"  # see buyers, ban and unban
    BROADCAST = "broadcast"
    REPORTS = "reports"
    AUDIT = "audit"
    DISTRIBUTORS = "distributors"  # distributors' earnings, their commission rates, blocking them


_POWERS: dict[Role, frozenset[Power]] = {
    Role.OWNER: frozenset(Power),
    Role.ADMIN: frozenset(Power) - {Power.STAFF, Power.EXPORT, Power.AUDIT},
    Role.OPERATOR: frozenset({Power.STOCK, Power.ORDERS}),
}

# Staff roles an owner can hand out (owners are set in the shop's settings, not in chat).
GRANTABLE = (Role.ADMIN, Role.OPERATOR)


@dataclass(frozen=True, slots=True)
class Grant:
    """What one person may do. ``products`` / ``categories``: an operator's scope (both empty: all)."""

    role: Role
    products: frozenset[int] = field(default_factory=frozenset)
    categories: frozenset[int] = field(default_factory=frozenset)

    def may(self, power: Power) -> bool:
        return power in _POWERS[self.role]

    @property
    def scoped(self) -> bool:
        """True when this grant reaches only some products."""
        return self.role is Role.OPERATOR and bool(self.products or self.categories)

    def covers(self, product_id: int, category_id: int | None) -> bool:
        """Whether a product (in ``category_id``) is within reach: always, unless a scoped operator's
        scope lists neither the product nor its category."""
        if not self.scoped:
            return True
        return product_id in self.products or (category_id is not None and category_id in self.categories)

    def powers(self) -> frozenset[Power]:
        return _POWERS[self.role]
