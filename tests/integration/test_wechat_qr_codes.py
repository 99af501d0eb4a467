"""Each scene's permanent QR code is made once, whichever process asks and however many at once, on SQLite
and PostgreSQL; a maker that fails gives its claim back, one that died leaves it to go stale."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from core.clock import FrozenClock
from core.context import Context, ShopConfig
from core.db import Database
from core.services import Services
from core.services.wechat_qr_codes import CLAIM_FOR
from core.vault import Vault

APP_ID = "wx0123456789abcdef"
SCENE = "ref:AbCdEfGh12"


class Maker:
    """WeChat's qrcode/create as the service sees it: counts its calls, can be slow or fail."""

    def __init__(self, fail: bool = False, delay: float = 0.0) -> None:
        self.calls, self.fail, self.delay = 0, fail, delay

    async def __call__(self, scene: str) -> str:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("WeChat refused")
        return f"https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket={scene}-{self.calls}"


@pytest.fixture
async def other(any_db: Database, vault: Vault, clock: FrozenClock) -> AsyncIterator[Services]:
    """A second process's services: its own connection pool on the same database."""
    db = Database(any_db.url, pool_size=20)
    yield Services(Context(db=db, vault=vault, config=ShopConfig(currency="CNY"), clock=clock))
    await db.dispose()


async def test_of_many_asking_at_once_in_two_processes_one_makes_the_code_and_all_get_it(
    any_shop: Services, other: Services
) -> None:
    make = Maker(delay=0.05)
    asks = [s.wechat_qr_codes.permanent_url(APP_ID, SCENE, make) for s in (any_shop, other) * 4]
    urls = await asyncio.gather(*asks)
    assert make.calls == 1 and set(urls) == {f"https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket={SCENE}-1"}
    assert await other.wechat_qr_codes.permanent_url(APP_ID, SCENE, make) == urls[0]
    assert make.calls == 1
    assert await other.wechat_qr_codes.permanent_url(APP_ID, "ref:ZyXwVuTs98", make) != urls[0]


async def test_a_failed_making_gives_the_claim_back_and_the_next_ask_makes_it(any_shop: Services) -> None:
    qr = any_shop.wechat_qr_codes
    with pytest.raises(RuntimeError):
        await qr.permanent_url(APP_ID, SCENE, Maker(fail=True))
    make = Maker()
    assert await qr.permanent_url(APP_ID, SCENE, make) is not None and make.calls == 1


async def test_a_claim_whose_maker_died_is_waited_for_briefly_then_taken_over_once_stale(
    any_shop: Services, other: Services, clock: FrozenClock
) -> None:
    never = asyncio.Event()

    async def dies(scene: str) -> str:  # the process stops while WeChat is being asked
        await never.wait()
        raise AssertionError("unreachable")

    dying = asyncio.create_task(any_shop.wechat_qr_codes.permanent_url(APP_ID, SCENE, dies))
    await asyncio.sleep(0.05)
    make = Maker()
    assert await other.wechat_qr_codes.permanent_url(APP_ID, SCENE, make, wait=0.1) is None
    assert make.calls == 0  # claimed by a live-looking maker: not made twice
    clock.advance(seconds=CLAIM_FOR.total_seconds() + 1)
    url = await other.wechat_qr_codes.permanent_url(APP_ID, SCENE, make, wait=0.1)
    assert url is not None and make.calls == 1
    dying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dying
    assert await any_shop.wechat_qr_codes.permanent_url(APP_ID, SCENE, Maker()) == url  # kept
