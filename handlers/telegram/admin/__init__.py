"""The admins' routers (admin screens: stock, orders, buyers…). ``build()`` returns the parent router, gated
by ``AdminOnly`` for every update type (only messages and button taps can pass): its handlers, and those
of every router it includes, see only the shop's admins in their private chat. Everything else passes
through untouched to the buyer routers, so an admin can shop like anyone. Empty of commands for now."""

from __future__ import annotations

from aiogram import Router

from handlers.telegram.admin.filters import AdminOnly


def build() -> Router:
    """A fresh admin router (one per dispatcher); admin feature routers will be included into it."""
    router = Router(name=__name__)
    for name, observer in router.observers.items():
        if name != "error":  # every update type, including those a later Bot API adds
            observer.filter(AdminOnly())
    return router
