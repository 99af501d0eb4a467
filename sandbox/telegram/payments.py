"""Invoices and payments: Telegram's field limits, the currencies it takes, and the charges users make.

Currencies: Telegram publishes the ones payments support, with per-currency bounds, in
https://core.telegram.org/bots/payments/currencies.json (``exp`` digits after the point, ``min_amount`` about
US$1 and ``max_amount`` about US$10,000 in that currency, e.g. RUB 8653 / 86530475). The file moves with
exchange rates every day, so the emulator keeps a table of the common ones with rounded rates and derives the
same two bounds from them: an amount in the smallest unit must lie within [US$1, US$10,000] equivalents.

Telegram Stars (``XTR``): exactly one price, no provider token, whole Stars from 1 to ``STARS_MAX`` per
invoice. 10,000 is the per-payment maximum bots have been held to (the same bound tdlib carries for paid
reactions, subscriptions and paid messages); raise ``Emulator.stars_max`` if Telegram lifts it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from sandbox.telegram.errors import bad
from sandbox.telegram.limits import DEEP_LINK_RE

STARS_MAX = 10_000
# code: (exp, rounded units of the currency per US dollar)
CURRENCIES: dict[str, tuple[int, float]] = {
    "USD": (2, 1.0),
    "EUR": (2, 0.92),
    "GBP": (2, 0.79),
    "CHF": (2, 0.88),
    "CNY": (2, 7.2),
    "HKD": (2, 7.8),
    "TWD": (2, 32.0),
    "SGD": (2, 1.34),
    "JPY": (0, 150.0),
    "KRW": (0, 1350.0),
    "INR": (2, 83.0),
    "IDR": (2, 16000.0),
    "THB": (2, 36.0),
    "VND": (0, 25000.0),
    "PHP": (2, 56.0),
    "MYR": (2, 4.7),
    "RUB": (2, 86.53),
    "UAH": (2, 40.0),
    "KZT": (2, 450.0),
    "UZS": (2, 12500.0),
    "TRY": (2, 32.0),
    "PLN": (2, 4.0),
    "CZK": (2, 23.0),
    "HUF": (2, 360.0),
    "RON": (2, 4.6),
    "SEK": (2, 10.5),
    "NOK": (2, 10.7),
    "DKK": (2, 6.9),
    "CAD": (2, 1.36),
    "AUD": (2, 1.5),
    "NZD": (2, 1.65),
    "BRL": (2, 5.0),
    "MXN": (2, 17.0),
    "ARS": (2, 900.0),
    "AED": (2, 3.67),
    "SAR": (2, 3.75),
    "ILS": (2, 3.7),
    "EGP": (2, 48.0),
    "NGN": (2, 1500.0),
    "ZAR": (2, 18.5),
}


def bounds(currency: str) -> tuple[int, int]:
    """The smallest and largest total an invoice in ``currency`` may ask for, in its smallest unit."""
    exp, per_usd = CURRENCIES[currency]
    unit = per_usd * 10**exp
    return math.ceil(unit), math.floor(unit * 10_000)


@dataclass
class Payment:
    charge_id: str
    user_id: int
    currency: str
    amount: int
    payload: str
    refunded: bool = False
    date: int = field(default_factory=lambda: int(time.time()))


def check_invoice(p: dict[str, Any], stars_max: int = STARS_MAX) -> dict[str, Any]:
    """sendInvoice's fields as Telegram checks them; returns the ``invoice`` object of the message."""
    title, description = str(p.get("title") or ""), str(p.get("description") or "")
    payload, currency = str(p.get("payload") or ""), str(p.get("currency") or "")
    start_parameter = str(p.get("start_parameter") or "")
    prices = p.get("prices")
    if not 1 <= len(title) <= 32:
        raise bad("INVOICE_TITLE_INVALID" if title else "title is empty")
    if not 1 <= len(description) <= 255:
        raise bad("INVOICE_DESCRIPTION_INVALID")
    if not 1 <= len(payload.encode()) <= 128:
        raise bad("INVOICE_PAYLOAD_INVALID")
    if start_parameter and not DEEP_LINK_RE.fullmatch(start_parameter):
        raise bad("START_PARAM_INVALID")
    if currency != "XTR" and currency not in CURRENCIES:
        raise bad("CURRENCY_INVALID")
    if not isinstance(prices, list) or not prices:
        raise bad("prices are empty")
    total = 0
    for price in prices:
        if not isinstance(price, dict) or not str(price.get("label") or "").strip():
            raise bad("can't parse prices JSON object: LabeledPrice label must be non-empty")
        amount = price.get("amount")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise bad("CURRENCY_TOTAL_AMOUNT_INVALID")
        total += amount
    if currency == "XTR":
        if p.get("provider_token"):
            raise bad("provider_token must be empty for payments in Telegram Stars")
        if len(prices) != 1:
            raise bad("STARS_INVOICE_INVALID: exactly one price is allowed")
        if total > stars_max:
            raise bad("STARS_INVOICE_INVALID: too many Stars for one invoice")
    else:
        if not p.get("provider_token"):
            raise bad("PAYMENT_PROVIDER_INVALID")
        low, high = bounds(currency)
        if not low <= total <= high:
            raise bad("CURRENCY_TOTAL_AMOUNT_INVALID")
    return {
        "title": title,
        "description": description,
        "start_parameter": start_parameter,
        "currency": currency,
        "total_amount": total,
    }
