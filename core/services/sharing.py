"""Sharing products: the products on sale that match a few words (a distributor typing ``@bot words`` in a
chat), the one product a ``/share`` names, and the sharer's referral code that every shared card carries.

Matching is case-insensitive (Unicode case folding) against the product's name and description, and every
word must match one of them. Order: products whose name matches every word before those found through their
description, then in stock before sold out, then the shelf's order. No words list every product on sale in
that order. A page holds at most ``PAGE_MAX`` products (Telegram shows 50 results per inline answer); the
next page starts at ``Found.next_offset``. Products off sale are never found.

Everything is read from the in-memory catalog (``core.catalog_cache``): a query per keystroke costs no
database trip. Only the sharer's code may write, once: the first share makes their referral code (and
their user row, as /invite does)."""

from __future__ import annotations

from dataclasses import dataclass

from core.context import Context
from core.errors import ProductNotFound
from core.models import DeliveryKind, Product, User, UserIdentity
from core.services.catalog import CatalogService
from core.services.referrals import ReferralService
from core.services.users import UserService

PAGE_MAX = 50
WORDS_MAX = 256  # characters of a query that are looked at (Telegram sends at most 256)
WORDS_COUNT_MAX = 16  # words beyond these add nothing but work


@dataclass(frozen=True, slots=True)
class Shared:
    """A product on sale and its unique-key stock (shared keys and manual delivery never run out)."""

    product: Product
    available: int

    @property
    def in_stock(self) -> bool:
        return self.product.delivery_kind is not DeliveryKind.UNIQUE or self.available > 0


@dataclass(frozen=True, slots=True)
class Found:
    items: tuple[Shared, ...]
    next_offset: int | None  # where the next page starts; None: this was the last


def words_of(query: str) -> list[str]:
    """The words of a query, case-folded, at most ``WORDS_COUNT_MAX`` of them."""
    return query[:WORDS_MAX].casefold().split()[:WORDS_COUNT_MAX]


def rank(product: Product, words: list[str]) -> int | None:
    """0 when every word is in the name, 1 when every word is in the name or the description, None
    when some word is in neither."""
    name, description = product.name.casefold(), product.description.casefold()
    if all(w in name for w in words):
        return 0
    if all(w in name or w in description for w in words):
        return 1
    return None


class SharingService:
    def __init__(
        self, ctx: Context, catalog: CatalogService, users: UserService, referrals: ReferralService
    ) -> None:
        self.ctx, self.catalog, self.users, self.referrals = ctx, catalog, users, referrals

    async def search(self, query: str, *, offset: int = 0, limit: int = PAGE_MAX) -> Found:
        """A page of the products on sale matching ``query`` (see the module docstring)."""
        words = words_of(query)
        limit = max(1, min(limit, PAGE_MAX))
        offset = max(0, offset)
        ranked = []
        for position, (product, available) in enumerate(await self.catalog.shelf()):
            r = rank(product, words)
            if r is not None:
                shared = Shared(product, available)
                ranked.append(((r, not shared.in_stock, position), shared))
        ranked.sort(key=lambda item: item[0])
        page = tuple(shared for _, shared in ranked[offset : offset + limit])
        more = offset + limit < len(ranked)
        return Found(page, offset + limit if more else None)

    async def shareable(self, product_id: int) -> Shared | None:
        """The product a ``/share`` names, if it is on sale; None for an unknown or hidden one."""
        try:
            product, available = await self.catalog.card(product_id)
        except ProductNotFound:
            return None
        return Shared(product, available) if product.active else None

    async def code(self, who: User | UserIdentity) -> str | None:
        """The sharer's referral code, made at their first share (with their user row, as /invite makes
        it); None for a blocklisted user, who shares nothing."""
        if isinstance(who, User) and who.blocklisted:
            return None
        user = await self.users.stored(who)
        if user.blocklisted:
            return None
        return (await self.referrals.invite(user.id)).code
