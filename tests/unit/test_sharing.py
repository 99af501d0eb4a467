"""Finding products to share: every word matches, name matches first, in stock before sold out, never a
product off sale, pages of at most 50; the sharer's code made once, none for a blocklisted user."""

from __future__ import annotations

from core.models import DeliveryKind, UserIdentity
from core.services import Services
from core.services.sharing import PAGE_MAX, words_of
from tests.conftest import draft, stocked


async def _names(shop: Services, query: str, offset: int = 0) -> list[str]:
    return [s.product.name for s in (await shop.sharing.search(query, offset=offset)).items]


async def test_every_word_must_match_the_name_or_the_description_whatever_the_case(shop: Services) -> None:
    await stocked(shop, 1, name="Steam Gift Card 10")
    await stocked(shop, 1, name="Netflix Premium", description="One month of STEAMing films")
    await stocked(shop, 1, name="Spotify")
    assert await _names(shop, "steam") == ["Steam Gift Card 10", "Netflix Premium"]
    assert await _names(shop, "GIFT steam") == ["Steam Gift Card 10"]
    assert await _names(shop, "steam month") == ["Netflix Premium"]
    assert await _names(shop, "steam xbox") == []


async def test_name_matches_come_first_then_in_stock_before_sold_out_then_the_shelf_order(
    shop: Services,
) -> None:
    await stocked(shop, 0, name="Card A sold out")
    await stocked(shop, 1, name="Other", description="a card")
    await stocked(shop, 2, name="Card B")
    await shop.catalog.add_product(draft(name="Card C shared", delivery_kind=DeliveryKind.SHARED))
    assert await _names(shop, "card") == ["Card B", "Card C shared", "Card A sold out", "Other"]
    found = await shop.sharing.search("card")
    assert [s.in_stock for s in found.items] == [True, True, False, True]


async def test_no_words_list_every_product_on_sale_and_never_one_off_sale(shop: Services) -> None:
    await stocked(shop, 1, name="On sale")
    hidden = await stocked(shop, 1, name="Hidden")
    await shop.catalog.update_product(hidden, active=False)
    assert await _names(shop, "") == ["On sale"]
    assert await _names(shop, "hidden") == []
    assert await shop.sharing.shareable(hidden) is None
    assert await shop.sharing.shareable(10**12) is None


async def test_results_come_in_pages_of_at_most_fifty(shop: Services) -> None:
    for i in range(PAGE_MAX + 3):
        await shop.catalog.add_product(draft(name=f"Key {i:02d}", delivery_kind=DeliveryKind.SHARED))
    first = await shop.sharing.search("key")
    assert len(first.items) == PAGE_MAX and first.next_offset == PAGE_MAX
    last = await shop.sharing.search("key", offset=PAGE_MAX)
    assert [s.product.name for s in last.items] == ["Key 50", "Key 51", "Key 52"] and last.next_offset is None
    assert (await shop.sharing.search("key", offset=10**9)).items == ()
    assert len((await shop.sharing.search("key", limit=10**6)).items) == PAGE_MAX


def test_a_query_is_cut_to_what_telegram_sends_and_a_few_words() -> None:
    assert words_of("  Steam   GIFT ") == ["steam", "gift"]
    assert len(words_of("a " * 1000)) == 16
    assert words_of("x" * 300) == ["x" * 256]


async def test_the_sharers_code_is_made_once_with_their_row_and_never_for_a_blocklisted_user(
    shop: Services,
) -> None:
    who = UserIdentity("telegram", "501", "en")
    code = await shop.sharing.code(who)
    user = await shop.users.find("telegram", "501")
    assert code is not None and user is not None
    assert await shop.sharing.code(user) == code == (await shop.referrals.invite(user.id)).code
    await shop.users.set_blocklisted(user.id, True)
    assert await shop.sharing.code(await shop.users.get(user.id)) is None
    assert await shop.sharing.code(who) is None  # the row says so, even when only the identity is known
