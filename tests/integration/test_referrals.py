"""Referral attribution on both databases: who a new user came with, kept for good; everything else refused
silently and counted only as an open."""

from __future__ import annotations

import asyncio
import logging

import pytest

from core.models import UserIdentity
from core.services import Services
from core.services.referrals import CODE_RE, Outcome
from tests.conftest import buyer


def newcomer(ext: str) -> UserIdentity:
    return UserIdentity("telegram", ext, "en", None)


async def referrer_of(shop: Services, ext: str) -> int | None:
    user = await shop.users.find("telegram", ext)
    assert user is not None
    return user.referrer_id


async def test_a_code_is_random_url_safe_unique_and_never_the_users_id(any_shop: Services) -> None:
    a, b = await buyer(any_shop, "111"), await buyer(any_shop, "222")
    ca, cb = await any_shop.referrals.invite(a), await any_shop.referrals.invite(b)
    assert CODE_RE.fullmatch(ca.code) and CODE_RE.fullmatch(cb.code) and ca.code != cb.code
    assert "111" not in ca.code and str(a) != ca.code
    assert await any_shop.referrals.invite(a) == ca  # made once


async def test_a_new_user_is_attributed_for_good_and_counted(
    any_shop: Services, caplog: pytest.LogCaptureFixture
) -> None:
    a = await buyer(any_shop, "111")
    code = (await any_shop.referrals.invite(a)).code
    with caplog.at_level(logging.INFO, logger="core.services.referrals"):
        arrival = await any_shop.referrals.arrive(newcomer("333"), code)
    assert arrival.outcome is Outcome.ATTRIBUTED and arrival.user is not None
    assert arrival.user.referrer_id == a == await referrer_of(any_shop, "333")
    assert "attributed" in caplog.text
    counts = await any_shop.referrals.invite(a)
    assert (counts.opens, counts.starts) == (1, 1)


async def test_a_later_link_never_re_attributes(any_shop: Services) -> None:
    a, b = await buyer(any_shop, "111"), await buyer(any_shop, "222")
    code_a, code_b = (await any_shop.referrals.invite(a)).code, (await any_shop.referrals.invite(b)).code
    await any_shop.referrals.arrive(newcomer("333"), code_a)
    again = await any_shop.referrals.arrive(newcomer("333"), code_b)
    assert again.outcome is Outcome.ALREADY_REFERRED
    assert await referrer_of(any_shop, "333") == a
    counts = await any_shop.referrals.invite(b)
    assert (counts.opens, counts.starts) == (1, 0)


async def test_self_referral_is_refused(any_shop: Services) -> None:
    a = await buyer(any_shop, "111")
    code = (await any_shop.referrals.invite(a)).code
    arrival = await any_shop.referrals.arrive(newcomer("111"), code)
    assert arrival.outcome is Outcome.SELF
    assert await referrer_of(any_shop, "111") is None


async def test_an_existing_user_is_refused_but_the_open_counts(
    any_shop: Services, caplog: pytest.LogCaptureFixture
) -> None:
    a, _ = await buyer(any_shop, "111"), await buyer(any_shop, "222")
    code = (await any_shop.referrals.invite(a)).code
    with caplog.at_level(logging.INFO, logger="core.services.referrals"):
        arrival = await any_shop.referrals.arrive(newcomer("222"), code)
    assert arrival.outcome is Outcome.EXISTING_USER
    assert "refused: existing user" in caplog.text
    assert all(r.levelno == logging.INFO for r in caplog.records)
    assert await referrer_of(any_shop, "222") is None
    counts = await any_shop.referrals.invite(a)
    assert (counts.opens, counts.starts) == (1, 0)


async def test_cycles_back_to_the_user_are_refused(any_shop: Services) -> None:
    a = await buyer(any_shop, "111")
    code_a = (await any_shop.referrals.invite(a)).code
    b = (await any_shop.referrals.arrive(newcomer("222"), code_a)).user
    assert b is not None
    c = (await any_shop.referrals.arrive(newcomer("333"), (await any_shop.referrals.invite(b.id)).code)).user
    assert c is not None
    code_b, code_c = (
        (await any_shop.referrals.invite(b.id)).code,
        (await any_shop.referrals.invite(c.id)).code,
    )
    assert (await any_shop.referrals.arrive(newcomer("111"), code_b)).outcome is Outcome.CYCLE  # A→B→A
    assert (await any_shop.referrals.arrive(newcomer("111"), code_c)).outcome is Outcome.CYCLE  # A→B→C→A
    assert await referrer_of(any_shop, "111") is None


async def test_an_unknown_or_malformed_code_changes_nothing(any_shop: Services) -> None:
    for code in ("ZZZZZZZZZZ", "short", "x" * 200, ""):
        arrival = await any_shop.referrals.arrive(newcomer("444"), code)
        assert arrival.outcome is Outcome.UNKNOWN_CODE and arrival.user is None
    assert await any_shop.users.find("telegram", "444") is None


async def test_one_newcomer_opening_two_links_at_once_gets_exactly_one_referrer(any_shop: Services) -> None:
    a, b = await buyer(any_shop, "111"), await buyer(any_shop, "222")
    codes = [(await any_shop.referrals.invite(u)).code for u in (a, b)]
    arrivals = await asyncio.gather(*(any_shop.referrals.arrive(newcomer("555"), c) for c in codes))
    assert sorted(x.outcome.value for x in arrivals) == sorted([Outcome.ATTRIBUTED, Outcome.ALREADY_REFERRED])
    winner = next(x for x in arrivals if x.attributed)
    assert await referrer_of(any_shop, "555") == winner.referrer_id
    starts = [(await any_shop.referrals.invite(u)).starts for u in (a, b)]
    assert sorted(starts) == [0, 1]
