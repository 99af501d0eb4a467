"""The admins' routers (the back office in chat). ``build()`` returns the parent router, gated by
``StaffOnly`` for every update type (only messages and button taps can pass): its handlers, and those of
every router it includes, see only the shop's owners and staff in their private chat, with their ``grant``;
each screen's router passes only the roles that include its power (``Has``), and what is left goes to
``refusals.beyond_role``. Everything that is no admin screen passes through untouched to the buyer
routers, so an admin can shop like anyone. ``refusals.refusals()``, included after it, answers admin
commands and buttons from everyone else as unknown ones."""

from __future__ import annotations

from aiogram import Router

from handlers.telegram.admin import (
    audit,
    broadcast,
    buyers,
    distributors,
    editor,
    keys,
    menu,
    orders,
    payouts,
    products,
    refusals,
    reports,
    staff,
    stock,
    upload,
)
from handlers.telegram.admin.filters import StaffOnly


def build() -> Router:
    """A fresh admin router (one per dispatcher) with every admin screen."""
    router = Router(name=__name__)
    for name, observer in router.observers.items():
        if name != "error":  # every update type, including those a later Bot API adds
            observer.filter(StaffOnly())
    router.include_routers(
        menu.build(),
        stock.build(),
        upload.build(),
        keys.build(),
        products.build(),
        editor.build(),
        staff.build(),
        orders.build(),
        buyers.build(),
        reports.build(),
        audit.build(),
        broadcast.build(),
        payouts.build(),
        distributors.build(),
        refusals.beyond_role_router(),
    )
    return router
