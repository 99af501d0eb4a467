"""The official account's access_token shared by two processes (two connection pools on one database), on
SQLite and PostgreSQL, against the WeChat emulator over HTTP: however hard both call the API, WeChat is
asked for the token once; after it expires both recover with one fetch; near its end exactly one process
renews it early; a process that died holding the renewal blocks no one past its lease."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from core.clock import FrozenClock
from core.context import Context, ShopConfig
from core.db import Database
from core.services import Services
from core.services.wechat_tokens import EARLY, LEASE
from core.vault import Vault
from handlers.wechat.api import WechatApi
from handlers.wechat.errors import WechatApiError
from handlers.wechat.tokens import NO_TOKEN, TokenStore
from sandbox.wechat import Emulator, serve

APP_ID = "wx0123456789abcdef"
SECRET = "integration-app-secret-000000000"
FANS = [f"o-fan-{i:025d}" for i in range(4)]
STABLE = "/cgi-bin/stable_token"
CALLS = 12  # concurrent sends per process in each wave


@dataclass
class Process:
    services: Services
    tokens: TokenStore
    api: WechatApi


def fetches(emu: Emulator) -> int:
    return sum(n for (p, _), n in emu.calls.items() if p == STABLE)


@pytest.fixture
async def emu() -> AsyncIterator[tuple[Emulator, str]]:
    e = Emulator(appid=APP_ID, secret=SECRET)
    for fan in FANS:
        e.follower(fan)
        e.record_payment(fan)  # no count limit: the test is about tokens, not windows
    runner, url = await serve(e)
    yield e, url
    await runner.cleanup()


@pytest.fixture
async def processes(
    any_db: Database, vault: Vault, clock: FrozenClock, emu: tuple[Emulator, str]
) -> AsyncIterator[tuple[Process, Process]]:
    """Two processes: each its own pool on the same database, its own token store and API client."""
    other = Database(any_db.url, pool_size=20)
    made = []
    for db in (any_db, other):
        services = Services(Context(db=db, vault=vault, config=ShopConfig(currency="CNY"), clock=clock))
        tokens = TokenStore(services.wechat_tokens, APP_ID)
        made.append(Process(services, tokens, WechatApi(APP_ID, SECRET, emu[1], tokens)))
    yield made[0], made[1]
    for p in made:
        await p.api.close()
    await other.dispose()


async def hammer(*ps: Process, n: int = CALLS) -> None:
    await asyncio.gather(*(p.api.send_text(FANS[i % len(FANS)], f"msg {i}") for p in ps for i in range(n)))


async def test_two_processes_calling_at_once_fetch_the_token_from_wechat_once(
    processes: tuple[Process, Process], emu: tuple[Emulator, str]
) -> None:
    a, b = processes
    wx, _ = emu
    await hammer(a, b)
    assert fetches(wx) == 1
    assert sum(len(wx.texts(f)) for f in FANS) == 2 * CALLS
    assert a.tokens._cached and b.tokens._cached
    assert a.tokens._cached.token == b.tokens._cached.token


async def test_after_the_token_expires_both_processes_recover_with_one_fetch(
    processes: tuple[Process, Process], emu: tuple[Emulator, str]
) -> None:
    a, b = processes
    wx, _ = emu
    await hammer(a, b)
    wx.expire_token()  # every call with the old token now gets 42001
    await hammer(a, b)
    assert fetches(wx) == 2
    assert sum(len(wx.texts(f)) for f in FANS) == 4 * CALLS
    assert sum(wx.force_refreshes.values()) == 0


async def test_near_its_end_the_token_is_renewed_early_by_exactly_one_process(
    processes: tuple[Process, Process], emu: tuple[Emulator, str], clock: FrozenClock
) -> None:
    a, b = processes
    wx, _ = emu
    await hammer(a, b)
    old = await a.services.wechat_tokens.current(APP_ID)
    left = EARLY.total_seconds() - 60  # 4 minutes before it expires: due, still valid
    clock.advance(seconds=7200 - left)
    wx.advance(7200 - left)
    await hammer(a, b)
    new = await b.services.wechat_tokens.current(APP_ID)
    assert fetches(wx) == 2
    assert old and new and new.token != old.token and new.fresh(clock.now())
    assert new.lease_holder is None  # the renewer let go
    await hammer(a, b)
    assert fetches(wx) == 2 and sum(len(wx.texts(f)) for f in FANS) == 6 * CALLS


async def test_while_one_process_renews_the_other_keeps_using_the_still_valid_token(
    processes: tuple[Process, Process], emu: tuple[Emulator, str], clock: FrozenClock
) -> None:
    a, b = processes
    wx, _ = emu
    await hammer(a, b, n=1)
    old = await a.services.wechat_tokens.current(APP_ID)
    clock.advance(seconds=7200 - 60)
    wx.advance(7200 - 60)
    renewing = asyncio.Event()
    finish = asyncio.Event()

    async def slow_fetch() -> tuple[str, int]:
        renewing.set()
        await finish.wait()
        return await a.api._fetch_token()

    task = asyncio.create_task(a.tokens.token(slow_fetch))
    await renewing.wait()
    assert old is not None and await b.tokens.token(b.api._fetch_token) == old.token  # not waiting
    finish.set()
    assert await task != old.token
    assert fetches(wx) == 2


async def test_a_process_that_died_renewing_blocks_the_others_only_until_its_lease_runs_out(
    processes: tuple[Process, Process], emu: tuple[Emulator, str], clock: FrozenClock
) -> None:
    a, _ = processes
    wx, _ = emu
    assert await a.services.wechat_tokens.claim(APP_ID, "a-dead-process")
    waiting = asyncio.create_task(a.tokens.token(a.api._fetch_token))
    await asyncio.sleep(0.1)
    assert not waiting.done() and fetches(wx) == 0  # no token anywhere, the lease held: it waits
    clock.advance(seconds=LEASE.total_seconds() + 1)
    token = await waiting
    assert fetches(wx) == 1
    stored = await a.services.wechat_tokens.current(APP_ID)
    assert stored and stored.token == token


async def test_with_no_token_and_the_renewal_held_a_caller_gives_up_after_its_wait(
    processes: tuple[Process, Process], emu: tuple[Emulator, str]
) -> None:
    a, _ = processes
    assert await a.services.wechat_tokens.claim(APP_ID, "someone-else")
    impatient = TokenStore(a.services.wechat_tokens, APP_ID, wait=0.1)
    with pytest.raises(WechatApiError) as failed:
        await impatient.token(a.api._fetch_token)
    assert failed.value.errcode == NO_TOKEN and fetches(emu[0]) == 0


async def test_a_failed_renewal_lets_go_of_the_lease_and_the_old_token_serves_until_it_expires(
    processes: tuple[Process, Process], emu: tuple[Emulator, str], clock: FrozenClock
) -> None:
    a, b = processes
    await hammer(a, n=1)
    old = await a.services.wechat_tokens.current(APP_ID)
    clock.advance(seconds=7200 - 60)

    async def wechat_away() -> tuple[str, int]:
        raise WechatApiError(-2, "/cgi-bin/stable_token unreachable")

    assert old is not None and await a.tokens.token(wechat_away) == old.token
    after = await a.services.wechat_tokens.current(APP_ID)
    assert after and after.lease_holder is None  # the next caller may try at once
    assert await b.services.wechat_tokens.claim(APP_ID, b.tokens.holder)
    clock.advance(seconds=61)  # expired: nothing left to fall back on
    await b.services.wechat_tokens.release(APP_ID, b.tokens.holder)
    with pytest.raises(WechatApiError):
        await a.tokens.token(wechat_away)


async def test_a_rejected_token_is_dropped_only_if_no_newer_one_was_stored(
    processes: tuple[Process, Process],
) -> None:
    a, b = processes
    service = a.services.wechat_tokens
    assert await service.claim(APP_ID, "p")
    await service.store(APP_ID, "p", "T-new", 7200)
    assert not await service.invalidate(APP_ID, "T-old")  # a late rejection of the previous token
    kept = await service.current(APP_ID)
    assert kept and kept.token == "T-new"
    await b.tokens.rejected("T-new")
    gone = await service.current(APP_ID)
    assert gone and gone.token is None


async def test_the_renewal_lease_goes_to_one_claimant_and_only_when_the_token_is_due(
    processes: tuple[Process, Process], clock: FrozenClock
) -> None:
    a, b = processes
    sa, sb = a.services.wechat_tokens, b.services.wechat_tokens
    claims = await asyncio.gather(*(s.claim(APP_ID, f"h{i}") for i, s in enumerate([sa, sb] * 4)))
    assert sorted(claims) == [False] * 7 + [True]
    (holder,) = [f"h{i}" for i, took in enumerate(claims) if took]
    await sa.store(APP_ID, holder, "T1", 7200)
    assert not await sb.claim(APP_ID, "h-late")  # fresh: nothing to renew
    clock.advance(seconds=7200 - EARLY.total_seconds())
    assert await sb.claim(APP_ID, "h-due") and not await sa.claim(APP_ID, "h-other")
