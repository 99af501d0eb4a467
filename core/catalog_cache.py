"""The catalog in memory: products, categories and per-product stock counts, so that showing the shelf or
a product card costs no database trip at all in the common case.

What keeps it true:
- **This process's changes** reach it at once: a checkout takes its keys off the count it holds; any other
  change of stock (an import, a release, a refund putting keys back) marks the counts stale, and any change
  of the catalog (a product or category added or edited, a shared key set) drops the whole snapshot.
- **Other processes' changes** (a CLI import, another instance behind the load balancer) reach it through
  the database: every catalog or stock change that is not a plain reservation bumps the ``catalog_version``
  cursor in its own transaction, and the cache reads that version (one small read) at most once every
  ``poll`` seconds; a new version reloads the snapshot. Reservations and sales by other instances change
  only counts, which are re-read every ``stock_ttl`` seconds.

The core re-checks everything that matters inside the purchase transaction (the product on sale, the
stock actually reserved), so a count that is a second old can at worst show "3 left" when 2 are.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from core.models import Category, Product

CATALOG_VERSION = "catalog_version"  # the cursor other processes' catalog changes bump


@dataclass(slots=True)
class CatalogSnapshot:
    version: int
    products: dict[int, Product]  # every product, in id order (inactive ones too: a card says "not on sale")
    categories: list[Category]  # active, in display order
    available: dict[int, int]  # unique-key stock per product
    stock_read_at: float


@dataclass
class CatalogCache:
    poll: float = 1.0  # seconds between two reads of the catalog version
    stock_ttl: float = 2.0  # seconds other processes' reservations may take to show
    clock: Callable[[], float] = time.monotonic
    snapshot: CatalogSnapshot | None = None
    checked_at: float = float("-inf")
    stock_stale: bool = False
    # Moved by every change made here: a reload that began before one has read what is no longer so.
    generation: int = 0
    _lock: asyncio.Lock | None = field(default=None, repr=False)

    def lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    def needs_check(self) -> bool:
        s = self.snapshot
        now = self.clock()
        return (
            s is None
            or self.stock_stale
            or now - self.checked_at >= self.poll
            or now - s.stock_read_at >= self.stock_ttl
        )

    # ------------------------------------------------------------------ what this process changed

    def catalog_changed(self) -> None:
        """A product or category changed here: the next view reloads everything."""
        self.snapshot = None
        self.generation += 1

    def stock_changed(self) -> None:
        """Stock changed here in a way a count cannot follow by itself: re-read the counts."""
        self.stock_stale = True
        self.generation += 1

    def reserved(self, product_id: int, quantity: int) -> None:
        """A checkout here took ``quantity`` keys of the product."""
        s = self.snapshot
        if s is not None and product_id in s.available:
            s.available[product_id] = max(0, s.available[product_id] - quantity)
