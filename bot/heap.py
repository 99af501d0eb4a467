"""How the shop's process sets CPython's garbage collector once it is up (``settle_heap``).

Measured in the storefront benchmark (1,000 journeys, SQLite): with the collector's defaults, collections
took about a tenth of the measured run's wall time, during which the event loop stands still:

- **Full collections** walked every object the process holds, about 260,000 of which startup built and
  which live as long as the process (aiogram's types, pydantic's schemas, SQLAlchemy's metadata, the
  routers...): 50-200 ms each, every few seconds under load. ``gc.freeze`` moves them to a generation no
  collection looks at. They are still freed by reference counting; only cycles among them would never be
  collected, and objects kept for the process's lifetime form none worth collecting.
- **Young collections**: CPython collects its youngest generation every 700 allocations of container
  objects, and a bot handling fifty updates at once has thousands of them in flight, so each collection
  found mostly live objects, promoted them and walked them again one generation up: over a thousand
  collections a run, 0.3-0.5 ms each, plus a hundred of the middle generation at 3 ms. Collecting every
  10,000 allocations lets most of them die by reference count first: the same run spent about a tenth of
  that time collecting. Cyclic garbage waits a little longer to be freed, bounded by that threshold.

This module imports nothing but ``gc``, so that the storefront benchmark's bare echo bot can show what
the same settings would give it.
"""

from __future__ import annotations

import gc

# Allocations between young collections, young collections between middle ones, middle ones between
# full ones (CPython's defaults: 700, 10, 10).
THRESHOLDS = (10_000, 20, 100)


def settle_heap() -> None:
    """Freeze what startup built out of every later collection and collect the young generations less
    often (see the module docstring). Called once, when the shop is up (``run_polling``, ``run_webhook``,
    the sandbox)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
