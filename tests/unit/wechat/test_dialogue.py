"""The buyer's dialogue over the callback: commands in Chinese and English, numbered choices, menu taps,
the welcome, and help for anything else."""

from __future__ import annotations

import pytest

from core.services import Services
from tests.conftest import pay, stocked
from tests.unit.wechat.conftest import Account, reply_text

ZH_CATALOG, EN_CATALOG = "在售商品", "On sale"


@pytest.fixture
async def products(shop: Services) -> tuple[int, int]:
    first = await stocked(shop, 3, name="Apple Card 100", price=10000, description="Redeem in the App Store.")
    second = await stocked(shop, 0, name="Bilibili VIP", price=2500)
    return first, second


@pytest.mark.parametrize("word", ["商品", "catalog", "Catalog "])
async def test_the_catalog_lists_products_on_sale_numbered(
    account: Account, products: tuple[int, int], word: str
) -> None:
    text = await account.say("o-a", word)
    assert ZH_CATALOG in text  # Chinese until the buyer asks for English
    assert "1. Apple Card 100" in text and "2. Bilibili VIP" in text and "$100.00" in text


async def test_a_number_opens_the_card_with_price_stock_description_and_how_to_buy(
    account: Account, products: tuple[int, int]
) -> None:
    await account.say("o-a", "english")
    await account.say("o-a", "catalog")
    card = await account.say("o-a", "1")
    assert "Apple Card 100" in card and "$100.00" in card and "In stock: 3" in card
    assert "Redeem in the App Store." in card and "buy N" in card and "from 1 to 3" in card
    assert "Out of stock" in await account.say("o-a", "2")


async def test_a_quantity_is_checked_against_the_card_and_totalled(
    account: Account, products: tuple[int, int]
) -> None:
    assert "请先选择商品" in await account.say("o-q", "买 2")
    await account.say("o-q", "商品")
    await account.say("o-q", "1")
    assert "1 到 3" in await account.say("o-q", "买 9")
    ok = await account.say("o-q", "买 2")
    assert "2 × Apple Card 100" in ok and "200.00" in ok


async def test_a_number_not_in_the_list_says_so_and_shows_the_list_again(
    account: Account, products: tuple[int, int]
) -> None:
    await account.say("o-a", "商品")
    text = await account.say("o-a", "7")
    assert "7" in text and ZH_CATALOG in text


async def test_a_number_without_a_list_in_memory_reads_the_catalog_as_shown(
    account: Account, products: tuple[int, int]
) -> None:
    assert "Apple Card 100" in await account.say("o-fresh", "1")  # another instance showed the list


@pytest.mark.parametrize(("word", "expected"), [("订单", "您还没有订单"), ("orders", "您还没有订单")])
async def test_orders_with_none_yet(account: Account, word: str, expected: str) -> None:
    assert expected in await account.say("o-b", word)


async def test_orders_lists_the_buyers_orders_without_keys(
    account: Account, shop: Services, products: tuple[int, int]
) -> None:
    user = await shop.users.ensure("wechat", "o-buyer", language="en")
    order = await shop.checkout.checkout(user.id, products[0], 2, "USD")
    await pay(shop, order)
    text = await account.say("o-buyer", "orders")
    assert order.ref in text and "Apple Card 100 × 2" in text and "delivered" in text
    assert "KEY-" not in text


@pytest.mark.parametrize("word", ["推广", "invite"])
async def test_invite_gives_the_same_referral_code_as_the_core(
    account: Account, shop: Services, word: str
) -> None:
    text = await account.say("o-c", word)
    user = await shop.users.find("wechat", "o-c")
    assert user is not None and (await shop.referrals.invite(user.id)).code in text


@pytest.mark.parametrize("word", ["帮助", "help", "random words", "📷"])
async def test_help_and_anything_unknown_get_the_help_text(account: Account, word: str) -> None:
    assert "商品 / catalog" in await account.say("o-d", word)


async def test_english_and_chinese_switch_the_language_and_it_sticks(
    account: Account, shop: Services, products: tuple[int, int]
) -> None:
    assert "Language: English" in await account.say("o-e", "English")
    assert EN_CATALOG in await account.say("o-e", "商品")
    user = await shop.users.find("wechat", "o-e")
    assert user is not None and user.language == "en"
    assert "语言：中文" in await account.say("o-e", "中文")
    assert ZH_CATALOG in await account.say("o-e", "catalog")


@pytest.mark.parametrize(
    ("key", "expected"), [("catalog", ZH_CATALOG), ("orders", "您还没有订单"), ("invite", "推广码")]
)
async def test_a_menu_tap_does_what_its_command_does(
    account: Account, products: tuple[int, int], key: str, expected: str
) -> None:
    status, raw = await account.post(account.event("o-f", "CLICK", key))
    assert status == 200 and expected in reply_text(raw)


async def test_following_the_account_gets_the_welcome_and_help_and_makes_a_chinese_user(
    account: Account, shop: Services
) -> None:
    status, raw = await account.post(account.event("o-new", "subscribe"))
    text = reply_text(raw)
    assert status == 200 and "欢迎" in text and "商品 / catalog" in text
    user = await shop.users.find("wechat", "o-new")
    assert user is not None and user.language == "zh_CN"


async def test_an_unfollow_gets_no_reply(account: Account) -> None:
    assert await account.post(account.event("o-gone", "unsubscribe")) == (200, "success")
