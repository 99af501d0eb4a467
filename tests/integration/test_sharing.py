"""Sharing on both databases: a newcomer's first shares, arriving at once (an inline query per keystroke),
make one user row and one referral code between them, and every card carries that code."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from core.models import UserIdentity
from core.services import Services
from core.tables import referral_codes, users
from tests.conftest import query


async def test_a_newcomers_concurrent_first_shares_make_one_row_and_one_code(any_shop: Services) -> None:
    who = UserIdentity("telegram", "4242", "zh_CN", "dora")
    codes = await asyncio.gather(*(any_shop.sharing.code(who) for _ in range(12)))
    assert len(set(codes)) == 1 and codes[0] is not None
    (rows,) = await query(any_shop, select(func.count()).select_from(users))
    (made,) = await query(any_shop, select(func.count()).select_from(referral_codes))
    assert (rows[0], made[0]) == (1, 1)
    user = await any_shop.users.find("telegram", "4242")
    assert user is not None and user.language == "zh_CN" and user.referrer_id is None
