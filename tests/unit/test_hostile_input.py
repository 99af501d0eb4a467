"""Hostile or unusual input the Telegram handlers must take calmly: bounded callback data and deep-link
payloads, HTML only where Telegram parses HTML, pages of buttons within Telegram's limits, a webhook
secret Telegram accepts, refusals that name the order's status."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from bot.i18n import build_i18n
from bot.settings import WEBHOOK_SECRET_RE, SettingsError, generate_webhook_secret, load_settings
from core.errors import InvalidOrderState
from core.models import Category, DeliveryKind, OrderStatus, Product, check_transition
from core.services import Services
from handlers.telegram.buyer.catalog import card_text
from handlers.telegram.ui import keyboards
from handlers.telegram.ui.callbacks import BuyCb, CategoryCb, OrdersCb, ProductCb, RevealCb
from handlers.telegram.ui.deeplinks import StartLink, deep_link, parse_start, start_payload
from handlers.telegram.ui.text import refusal, tr, tr_plain, visible

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def product(pid: int = 1, name: str = "Steam 10", description: str = "") -> Product:
    return Product(
        id=pid,
        category_id=None,
        name=name,
        description=description,
        price=990,
        price_stars=50,
        delivery_kind=DeliveryKind.UNIQUE,
        min_qty=1,
        max_qty=5,
        user_limit=0,
        user_limit_hours=0,
        daily_limit=0,
        validity_days=0,
        requires_phone=False,
        active=True,
        low_stock_threshold=0,
        created_at=NOW,
    )


@pytest.fixture
def en() -> object:
    i18n = build_i18n()
    with i18n.context(), i18n.use_locale("en"):
        yield i18n


@pytest.mark.parametrize(
    "data",
    [
        "p:99999999999999999999",  # more than a BIGINT holds
        "p:9223372036854775808",  # 2**63
        "p:0",
        "p:-1",
        "p:²",  # a digit to str.isdigit(), not to int()
        "p:１２",  # full-width digits
        "p:+5",
        "p: 5",
        "p:1_0",
        "p:5.0",
        "b:1:0:0",
        "b:1:100000:0",
        "c:-1:0",
        "c:1:99999999",
        "o:-1",
        "k:<script>",
        "k:" + "A" * 60,
    ],
)
def test_callback_data_out_of_bounds_is_refused_by_parsing(data: str) -> None:
    cls = {"p": ProductCb, "b": BuyCb, "c": CategoryCb, "o": OrdersCb, "k": RevealCb}[data[0]]
    with pytest.raises((TypeError, ValueError)):
        cls.unpack(data)


def test_callback_data_within_bounds_round_trips() -> None:
    assert ProductCb.unpack("p:9223372036854775807").product_id == 2**63 - 1
    assert CategoryCb.unpack(CategoryCb(category_id=0, page=3).pack()) == CategoryCb(category_id=0, page=3)
    assert BuyCb.unpack("b:7:2:1") == BuyCb(product_id=7, qty=2, fiat=True)


@pytest.mark.parametrize(
    ("payload", "link"),
    [
        ("rAbCdE12345", StartLink("AbCdE12345")),
        ("rAbCdE12345_p42", StartLink("AbCdE12345", 42)),
        ("rAbCdE12345_p9223372036854775807", StartLink("AbCdE12345", 2**63 - 1)),
        ("rAbCdE12345_p9223372036854775808", None),
        ("rAbCdE12345_p99999999999999999999", None),
        ("rAbCdE12345_p0", None),
        ("rAbCdE12345_p042", None),
        ("rAbCdE12345_p", None),
        ("rAbCdE12345_p１２", None),
        ("rAbCdE12345_x42", None),
        ("rAbCdE1234", None),  # a code is exactly 10 characters
        ("rAbCdE123456", None),
        ("rAbCdE-2345", None),
        ("rAbCdE²2345", None),
        ("r42", None),  # the old ``r<user id>`` links: never an id
        ("order-ABCDEF", None),  # an invoice's start_parameter: a plain /start
        ("r" + "A" * 64, None),
        ("", None),
        (None, None),
    ],
)
def test_start_payloads_are_parsed_strictly(payload: str | None, link: StartLink | None) -> None:
    assert parse_start(payload) == link


def test_start_payloads_round_trip_within_telegrams_64_characters() -> None:
    longest = StartLink("Z" * 10, 2**63 - 1)
    assert len(start_payload(longest)) <= 64
    assert parse_start(start_payload(longest)) == longest
    assert deep_link("shop_bot", StartLink("AbCdE12345")) == "https://t.me/shop_bot?start=rAbCdE12345"


@pytest.mark.usefixtures("en")
def test_admin_supplied_names_are_escaped_in_html_and_left_alone_in_plain_text() -> None:
    p = product(name="Tom & Jerry <3", description="I <3 you & <b>bold</b>")
    card = card_text(p, 3)
    assert "<b>Tom &amp; Jerry &lt;3</b>" in card
    assert "I &lt;3 you &amp; &lt;b&gt;bold&lt;/b&gt;" in card
    assert visible(card).startswith("Tom & Jerry <3\nI <3 you & <b>bold</b>")
    assert "Tom &amp; Jerry" in tr("quantity-title", name=p.name)
    assert "Tom & Jerry <3" in tr_plain("error-product-unavailable", name=p.name)
    labels = [
        b.text for row in keyboards.products([(p, 3)], back_to_categories=False).inline_keyboard for b in row
    ]
    assert labels[0].startswith("Tom & Jerry <3")
    long = tr_plain("invoice-description", qty=1, name="&" * 400, ref="R", minutes=15, limit=255)
    assert len(long) == 255 and "&amp;" not in long


def _check_keyboard(markup: object) -> list[str]:
    rows = markup.inline_keyboard  # type: ignore[attr-defined]
    assert sum(len(r) for r in rows) <= 100 and all(len(r) <= 8 for r in rows)
    return [b.callback_data for r in rows for b in r]


@pytest.mark.usefixtures("en")
def test_product_and_category_lists_are_paged_within_telegrams_keyboard_limits() -> None:
    items = [(product(i, f"P{i}"), 1) for i in range(1, 151)]
    seen: set[str] = set()
    for page in range(10):
        data = _check_keyboard(keyboards.products(items, back_to_categories=True, page=page))
        seen |= {d for d in data if d.startswith("p:")}
    assert seen == {f"p:{i}" for i in range(1, 151)}
    cats = [Category(i, f"C{i}", "", 0, True) for i in range(1, 121)]
    seen = set()
    for page in range(10):
        data = _check_keyboard(keyboards.categories(cats, page))
        seen |= {d for d in data if re.fullmatch(r"c:[1-9]\d*:0", d)}
    assert len(seen) == 120


def test_webhook_secret_must_be_what_telegram_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("has space", "ünïcode", "a" * 257, "semi;colon"):
        monkeypatch.setenv("WEBHOOK_SECRET", bad)
        with pytest.raises(SettingsError) as e:
            load_settings(_env_file=None)
        assert str(e.value).startswith("setting WEBHOOK_SECRET:") and "\n" not in str(e.value)
    monkeypatch.setenv("WEBHOOK_SECRET", "A-z_09" * 40)
    assert load_settings(_env_file=None).webhook.webhook_secret is not None
    assert all(WEBHOOK_SECRET_RE.fullmatch(generate_webhook_secret()) for _ in range(200))


@pytest.mark.parametrize("locale", ["en", "zh_CN"])
def test_an_order_state_refusal_names_the_status_translated(locale: str) -> None:
    i18n = build_i18n()
    with pytest.raises(InvalidOrderState) as raised:
        check_transition(OrderStatus.DELIVERED, OrderStatus.PENDING)
    with i18n.context(), i18n.use_locale(locale):
        delivered = i18n.gettext("status-delivered")
        for exc in (raised.value, InvalidOrderState(status=str(OrderStatus.DELIVERED))):
            for plain in (True, False):
                text = refusal(exc, plain=plain)
                assert f"{delivered}" in text and "()" not in text and "（）" not in text, text


async def test_a_chosen_language_sticks_and_an_unchosen_one_follows_the_channel(shop: Services) -> None:
    user = await shop.users.ensure("telegram", "42", language="en")
    assert await shop.users.follow_language(user.id, "zh_CN")
    assert (await shop.users.get(user.id)).language == "zh_CN"
    assert not await shop.users.follow_language(user.id, "zh_CN")  # nothing to change
    await shop.users.set_language(user.id, "en")
    assert not await shop.users.follow_language(user.id, "zh_CN")
    chosen = await shop.users.get(user.id)
    assert (chosen.language, chosen.language_chosen) == ("en", True)
