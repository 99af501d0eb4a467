"""Every filter and handler of the storefront's dispatcher is a coroutine. aiogram runs a plain function (a
bare ``F.…`` magic filter included) through ``asyncio.to_thread``: a trip to the thread pool and back per
filter per update, which under a burst of buyers costs more CPU than the check itself."""

from __future__ import annotations

from pathlib import Path

from aiogram import Router

from bot.app import Storefront, make_bot
from bot.settings import Settings
from core.services import Services


def _callables(router: Router) -> list[tuple[str, bool]]:
    """(what, awaited on the loop) for every filter and handler of ``router`` and the routers under it."""
    found = []
    for name, observer in router.observers.items():
        where = f"{router.name}.{name}"
        found += [
            (f"{where} router filter {f.callback!r}", f.awaitable) for f in observer._handler.filters or ()
        ]
        for handler in observer.handlers:
            found.append((f"{where} handler {handler.callback!r}", handler.awaitable))
            found += [(f"{where} filter {f.callback!r}", f.awaitable) for f in handler.filters or ()]
    for sub in router.sub_routers:
        found += _callables(sub)
    return found


def test_no_filter_or_handler_of_the_storefront_runs_in_a_thread_pool(shop: Services, tmp_path: Path) -> None:
    settings = Settings.load(_env_file=None, data_dir=tmp_path)
    front = Storefront.build(shop, settings, make_bot("123:abc", "http://127.0.0.1:9"))
    found = _callables(front.dp)
    assert len(found) > 20  # the walk really reached the routers
    assert [what for what, awaitable in found if not awaitable] == []
