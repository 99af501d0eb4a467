"""A running shop keeps what startup built out of the garbage collector's work and collects its young
objects less often (``bot.heap.settle_heap``): with the defaults, collections stopped the event loop for
about a tenth of a busy bot's time."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from bot import app, heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def _collected(obj: object) -> bool:
    return any(o is obj for generation in (0, 1, 2) for o in gc.get_objects(generation))


def test_settling_the_heap_leaves_every_object_built_so_far_out_of_collections(unfrozen: None) -> None:
    built_at_startup = {"routers": ["catalog", "checkout"]}
    assert _collected(built_at_startup)
    heap.settle_heap()
    assert not _collected(built_at_startup)
    made_later = {"update": [1]}
    assert _collected(made_later)


def test_a_settled_heap_collects_its_young_generation_every_ten_thousand_allocations(unfrozen: None) -> None:
    gc.set_threshold(700, 10, 10)
    heap.settle_heap()
    assert gc.get_threshold() == (10_000, 20, 100)


class _Stop(Exception):
    pass


def _front(seen: list[bool], startup_object: object) -> Any:
    async def nothing(*args: object, **kwargs: object) -> None:
        return None

    async def serving(*args: object, **kwargs: object) -> None:
        seen.append(not _collected(startup_object))
        raise _Stop

    async def until_up(step: Any) -> object:
        return await step()

    bot = SimpleNamespace(delete_webhook=nothing, set_webhook=serving)
    return SimpleNamespace(start_background=nothing, until_up=until_up, bot=bot, poll=serving, wechat=None)


async def test_long_polling_starts_with_the_heap_settled(unfrozen: None) -> None:
    seen: list[bool] = []
    startup_object = {"built": ["before polling"]}
    with pytest.raises(_Stop):
        await app.run_polling(_front(seen, startup_object))
    assert seen == [True]


async def test_the_webhook_starts_with_the_heap_settled(
    unfrozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    startup_object = {"built": ["before the webhook"]}
    settings = SimpleNamespace(
        webhook=SimpleNamespace(
            webhook_url="https://shop.example/tg/hook", webhook_secret=None, webhook_listen="127.0.0.1:0"
        ),
        ops=SimpleNamespace(listen=None),
    )
    front = _front(seen, startup_object)
    front.services = None  # what the WeChat mount would serve (left out below)

    async def serve(*args: object) -> Any:
        async def cleanup() -> None:
            return None

        return SimpleNamespace(cleanup=cleanup)

    monkeypatch.setattr(app, "webhook_app", lambda *a: None)  # not under test here
    monkeypatch.setattr(app, "mount_wechat", lambda *a: False)  # nor is the WeChat channel
    monkeypatch.setattr(app, "serve", serve)
    with pytest.raises(_Stop):
        await app.run_webhook(front, settings)  # type: ignore[arg-type]
    assert seen == [True]
