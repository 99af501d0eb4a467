"""Products the shop saves are products Telegram can invoice."""

from __future__ import annotations

import dataclasses

import pytest

from core.errors import InvalidInput
from core.models import Product
from core.services import Services
from core.services.catalog import STARS_MAX_PER_INVOICE, largest_qty
from tests.conftest import draft


async def test_a_stars_price_telegram_refuses_is_refused_when_the_product_is_saved(shop: Services) -> None:
    """Telegram refuses an invoice of more than 10,000 Stars; a product that can only be sold in such
    invoices would reserve stock on every Buy and fail at sendInvoice."""
    with pytest.raises(InvalidInput) as e:
        await shop.catalog.add_product(draft(price_stars=20_000, max_qty=5))
    assert e.value.params["field"] == "price_stars"
    with pytest.raises(InvalidInput):  # 2 × 6,000 Stars: its smallest order is already too large
        await shop.catalog.add_product(draft(price_stars=6_000, min_qty=2, max_qty=5))
    pid = await shop.catalog.add_product(draft(price_stars=STARS_MAX_PER_INVOICE, max_qty=5))
    with pytest.raises(InvalidInput):
        await shop.catalog.update_product(pid, price_stars=STARS_MAX_PER_INVOICE + 1)


async def test_an_absurd_fiat_price_is_refused_by_the_currencys_exponent(shop: Services) -> None:
    # USD has 2 decimals: no currency Telegram supports takes an invoice of 10^9 units (about US$10,000 is
    # the most, in any currency), so a price of $1,000,000,000.01 is a typo.
    with pytest.raises(InvalidInput) as e:
        await shop.catalog.add_product(draft(price=10**11 + 1))
    assert e.value.params["field"] == "price"
    await shop.catalog.add_product(draft(price=10**11))


async def test_the_quantities_offered_keep_price_times_quantity_within_one_invoice(shop: Services) -> None:
    pid = await shop.catalog.add_product(draft(price_stars=3_000, min_qty=1, max_qty=10))
    p: Product = await shop.catalog.product(pid)
    assert largest_qty(p) == 3
    assert largest_qty(dataclasses.replace(p, price_stars=1)) == 10
    assert largest_qty(dataclasses.replace(p, price_stars=0)) == 10  # not sold in Stars


def test_the_fiat_invoice_cap_follows_the_minor_unit_of_the_shop_currency() -> None:
    from bot.runtime import shop_config
    from bot.settings import Settings
    from core.services.catalog import FIAT_MAX_UNITS_PER_INVOICE, invoice_max

    for currency, exp in (("USD", 2), ("JPY", 0), ("CNY", 2)):
        config = shop_config(Settings.load(_env_file=None, shop_currency=currency))
        assert config.currency_exponent == exp
        assert invoice_max(currency, config.currency_exponent) == FIAT_MAX_UNITS_PER_INVOICE * 10**exp
