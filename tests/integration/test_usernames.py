"""Buyers' @usernames: the shop keeps the handle each user last showed, so admins can name a buyer by it."""

from __future__ import annotations

from core.services import Services


async def test_a_username_is_found_in_any_case_and_follows_its_holder_when_it_changes_hands(
    any_shop: Services,
) -> None:
    users = any_shop.users
    ann = await users.ensure("telegram", "1001")
    bo = await users.ensure("telegram", "1002")
    assert await users.find_by_username("telegram", "ann") is None

    await users.follow_username(ann.id, "Ann_X")
    found = await users.find_by_username("telegram", "ANN_x")
    assert found is not None and found.id == ann.id and found.username == "ann_x"

    # Ann gives the handle up and Bo takes it: only Bo carries it from then on
    await users.follow_username(bo.id, "ann_x")
    found = await users.find_by_username("telegram", "ann_x")
    assert found is not None and found.id == bo.id
    assert (await users.get(ann.id)).username is None
    assert await users.find_by_username("wechat", "ann_x") is None  # handles are per channel

    await users.follow_username(bo.id, None)
    assert await users.find_by_username("telegram", "ann_x") is None


async def test_a_buyer_created_by_a_checkout_keeps_the_username_of_their_identity(any_shop: Services) -> None:
    from core.models import UserIdentity

    user = await any_shop.users.stored(UserIdentity("telegram", "2001", "en", "carol"))
    assert user.username == "carol"
    found = await any_shop.users.find_by_username("telegram", "Carol")
    assert found is not None and found.id == user.id
