"""Every typed outbox message has one way to reach a WeChat user (``handlers.wechat.messages``): plain text in
the user's language, each text within WeChat's 2048 bytes; keys as text when they fit, else the order
page (or, without one, every key in ≤ 2 KB parts)."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from bot.i18n import compile_catalogs
from core import tables as t
from core.clock import FrozenClock
from core.context import Context, ShopConfig
from core.db import Database
from core.messages import (
    MESSAGE_TYPES,
    AwaitingManual,
    BalanceReturned,
    Broadcast,
    ChatReply,
    DailySummary,
    InvoiceReminder,
    KeysDelivered,
    MembershipReminder,
    Message,
    PayoutPaid,
    PayoutQueueDue,
    PayoutReady,
    PayoutRejected,
    RefundDue,
    RefundMade,
    StockAlert,
)
from core.models import DeliveryKind, Order
from core.roles import Role
from core.services import Services
from core.services.catalog import ProductDraft
from core.services.outbox import OutboxMessage
from core.vault import Vault
from handlers.wechat.messages import RENDERERS, AdminAlert, PayBack, Step, WxOutgoing, render
from handlers.wechat.texts import TEXT_MAX_BYTES, Texts
from tests.conftest import make_db, query

OPENID = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
PUBLIC = "https://shop.example.cn/wechat"  # WECHAT_PUBLIC_URL + WECHAT_CALLBACK_PATH
NAME = "腾讯视频 VIP <月卡> & 会员"
_CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_outbox_message_type_has_a_wechat_renderer() -> None:
    missing = sorted(kind for kind, cls in MESSAGE_TYPES.items() if cls not in RENDERERS)
    assert missing == [], f"no WeChat renderer for {missing}: add one to RENDERERS"


def test_the_wechat_renderers_know_no_type_the_core_does_not() -> None:
    assert set(RENDERERS) <= set(MESSAGE_TYPES.values())


@pytest.fixture
async def cny(tmp_path: Any, vault: Vault, clock: FrozenClock) -> AsyncIterator[Services]:
    db: Database = await make_db("sqlite", tmp_path)
    try:
        yield Services(Context(db=db, vault=vault, config=ShopConfig(currency="CNY"), clock=clock))
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def texts() -> Texts:
    return Texts(compile_catalogs())


async def wechat_buyer(shop: Services, language: str = "zh_CN") -> int:
    user = await shop.users.ensure("wechat", OPENID, language=language)
    return user.id


async def delivered(shop: Services, uid: int, keys: list[str], **draft: Any) -> Order:
    """``uid`` buys every key of a new product (``keys``) and pays with WeChat Pay."""
    fields: dict[str, Any] = {"name": NAME, "price": 1990, "max_qty": max(10, len(keys))} | draft
    pid = await shop.catalog.add_product(ProductDraft(**fields))
    await shop.stock.import_keys(pid, io.BytesIO("".join(k + "\n" for k in keys).encode()))
    order = await shop.checkout.checkout(uid, pid, len(keys), "CNY")
    await shop.payments.confirm_payment("wechatpay", f"42{order.id:08d}", order.ref, order.amount, "CNY")
    return order


async def delivered_by_hand(shop: Services, uid: int, content: str) -> Order:
    """``uid`` buys a manual-delivery product, pays with WeChat Pay, and an admin delivers ``content``."""
    pid = await shop.catalog.add_product(
        ProductDraft(name=NAME, price=1990, delivery_kind=DeliveryKind.MANUAL)
    )
    order = await shop.checkout.checkout(uid, pid, 1, "CNY")
    await shop.payments.confirm_payment("wechatpay", f"43{order.id:08d}", order.ref, order.amount, "CNY")
    return await shop.orders.deliver_manually(order.ref, content, actor="admin:1")


def outgoing(
    shop: Services, texts: Texts, uid: int, message: Message, language: str = "zh_CN", **kw: Any
) -> WxOutgoing:
    item = OutboxMessage(1, uid, "wechat", OPENID, language, message, attempts=0)
    return WxOutgoing(shop, texts, item, **kw)


def plain(steps: list[Step]) -> list[str]:
    return [s for s in steps if isinstance(s, str)]


async def revealed(shop: Services) -> int:
    a = t.audit_log
    return len(await query(shop, select(a.c.id).where(a.c.action == "keys_revealed")))


# ---------------------------------------------------------------- every type, both languages


async def every_message(shop: Services, uid: int, monkeypatch: pytest.MonkeyPatch) -> list[Message]:
    """One message of each type, with what rendering it reads in the shop."""
    order = await delivered(shop, uid, ["VIP-0001"], validity_days=30)
    pid = order.product_id
    await shop.stock.import_keys(pid, io.BytesIO(b"VIP-0002\n"))
    unpaid = await shop.checkout.checkout(uid, pid, 1, "CNY")
    await shop.staff.put("wechat", OPENID, Role.ADMIN, actor="test", owners=[])

    async def text_to_send(broadcast_id: int) -> str:
        return "<b>新品上架</b> &amp; <a href='https://shop.example.cn/x'>看看</a>"

    async def queue() -> Any:
        oldest = SimpleNamespace(id=7, created_at=datetime(2026, 1, 1, tzinfo=UTC))
        return SimpleNamespace(
            requests=2, oldest=oldest, to_pay=(SimpleNamespace(payout_currency="CNY", payout_amount=5000),)
        )

    monkeypatch.setattr(shop.broadcasts, "text_to_send", text_to_send)
    monkeypatch.setattr(shop.payout_run, "queue", queue)
    messages: list[Message] = [
        KeysDelivered(order.ref),
        AwaitingManual(order.ref),
        RefundDue("wechatpay", "4200000001", order.ref, "out_of_stock", 1990, "CNY"),
        RefundMade(order.ref, None, 1990, "CNY"),
        BalanceReturned(order.ref, "admin", 1990, "CNY"),
        Broadcast(1),
        PayoutPaid(3, 5000, "CNY", 5000, "CNY", "WX-TRANSFER-9"),
        PayoutRejected(4, 5000, "CNY", "资料不全"),
        MembershipReminder(order.ref, "d3"),
        InvoiceReminder(unpaid.ref),
        ChatReply("🛍 在售商品 (catalog)：\n1. 腾讯视频 VIP 月卡 · ¥19.90"),
        PayoutReady("CNY", 5000, 5000, "CNY"),
        PayoutQueueDue("2026-01-01T09"),
        StockAlert(pid, "low", 1, 5),
        DailySummary("2026-01-01"),
    ]
    assert {type(m) for m in messages} == set(MESSAGE_TYPES.values())
    return messages


async def test_every_message_type_renders_as_plain_text_in_chinese_and_in_english(
    cny: Services, texts: Texts, monkeypatch: pytest.MonkeyPatch
) -> None:
    uid = await wechat_buyer(cny)
    for message in await every_message(cny, uid, monkeypatch):
        zh = plain(await render(outgoing(cny, texts, uid, message, "zh_CN")))
        en = plain(await render(outgoing(cny, texts, uid, message, "en")))
        name = type(message).__name__
        assert zh and en, f"{name} said nothing"
        # a broadcast is in the admins' words, a late answer in the words it was answered in
        same = isinstance(message, Broadcast | ChatReply)
        assert zh != en or same, f"{name} is the same in both languages"
        for text in zh + en:
            assert 0 < len(text.encode()) <= TEXT_MAX_BYTES, name
            assert "<b>" not in text and "&amp;" not in text and "{" not in text, (name, text)
        assert _CJK.search("".join(zh)), name
        english = "".join(en).replace(NAME, "")
        assert re.search(r"[A-Za-z]{4}", english), name


async def test_an_unknown_language_reads_chinese(cny: Services, texts: Texts) -> None:
    uid = await wechat_buyer(cny)
    default = plain(await render(outgoing(cny, texts, uid, AwaitingManual("R1"), "zh_CN")))
    assert plain(await render(outgoing(cny, texts, uid, AwaitingManual("R1"), "ru"))) == default


async def test_product_names_and_broadcasts_keep_their_characters_and_lose_the_html(
    cny: Services, texts: Texts, monkeypatch: pytest.MonkeyPatch
) -> None:
    uid = await wechat_buyer(cny)
    messages = await every_message(cny, uid, monkeypatch)
    keys = plain(await render(outgoing(cny, texts, uid, messages[0])))
    assert NAME in keys[0]  # "<月卡> &" as the admins typed it: WeChat shows text as it is
    [shown] = plain(await render(outgoing(cny, texts, uid, Broadcast(1))))
    assert shown == "新品上架 & 看看 (https://shop.example.cn/x)"


async def test_a_late_answer_goes_as_the_text_it_would_have_been_within_wechats_limit(
    cny: Services, texts: Texts
) -> None:
    uid = await wechat_buyer(cny)
    answer = "订单 R-1：1 × 腾讯视频 <VIP> & 会员\nhttps://shop.example.cn/wechat/pay/R-1"
    assert await render(outgoing(cny, texts, uid, ChatReply(answer))) == [answer]
    [cut] = await render(outgoing(cny, texts, uid, ChatReply("卡" * 1000)))
    assert isinstance(cut, str) and len(cut.encode()) <= TEXT_MAX_BYTES and cut.endswith("…")


async def test_a_wechat_pay_refund_pays_back_first_then_says_so(cny: Services, texts: Texts) -> None:
    uid = await wechat_buyer(cny)
    due = RefundDue("wechatpay", "4200000001", "R-9", "amount_mismatch", 1990, "CNY")
    steps = await render(outgoing(cny, texts, uid, due))
    assert steps[0] == PayBack(due)
    assert len(steps) == 2 and "¥19.90" in str(steps[1]) and "R-9" in str(steps[1])


async def test_another_providers_refund_goes_to_the_admins_and_says_nothing_yet(
    cny: Services, texts: Texts
) -> None:
    uid = await wechat_buyer(cny)
    due = RefundDue("manual", "M-1", "R-9", None, 1990, "CNY")
    [alert] = await render(outgoing(cny, texts, uid, due))
    assert isinstance(alert, AdminAlert) and "by hand" in alert.text and alert.kind == "refund:M-1"


async def test_staff_messages_go_only_to_who_may_still_read_them(
    cny: Services, texts: Texts, monkeypatch: pytest.MonkeyPatch
) -> None:
    uid = await wechat_buyer(cny)
    messages = await every_message(cny, uid, monkeypatch)
    await cny.staff.remove("wechat", OPENID, actor="test")
    for m in messages[-3:]:
        assert await render(outgoing(cny, texts, uid, m)) == [], type(m).__name__


# ---------------------------------------------------------------- keys: text when they fit, else the page


async def test_keys_that_fit_go_as_one_text_and_are_revealed_with_an_audit(
    cny: Services, texts: Texts
) -> None:
    uid = await wechat_buyer(cny)
    order = await delivered(cny, uid, ["CDK-AAAA-0001", "CDK-AAAA-0002"], validity_days=30)
    [text] = await render(outgoing(cny, texts, uid, KeysDelivered(order.ref), public_url=PUBLIC))
    assert isinstance(text, str)
    assert (
        "\nCDK-AAAA-0001" in text and "\nCDK-AAAA-0002" in text and order.ref in text and "有效期至" in text
    )
    assert PUBLIC not in text
    assert await revealed(cny) == 1


async def test_many_keys_get_the_order_page_without_being_decrypted(cny: Services, texts: Texts) -> None:
    uid = await wechat_buyer(cny)
    order = await delivered(cny, uid, [f"K-{i:05d}" for i in range(80)], max_qty=100)
    [text] = await render(outgoing(cny, texts, uid, KeysDelivered(order.ref), public_url=PUBLIC))
    assert f"{PUBLIC}/order/{order.ref}" in str(text) and "K-00000" not in str(text)
    assert await revealed(cny) == 0  # the page reveals them, to the buyer OAuth identifies


async def test_keys_too_long_for_three_texts_get_the_order_page(cny: Services, texts: Texts) -> None:
    uid = await wechat_buyer(cny)
    order = await delivered(cny, uid, [f"{i}" + "卡" * 500 for i in range(4)])
    [text] = await render(outgoing(cny, texts, uid, KeysDelivered(order.ref), public_url=PUBLIC + "/"))
    assert f"{PUBLIC}/order/{order.ref}" in str(text) and "卡卡" not in str(text)


async def test_three_long_keys_still_go_as_three_texts(cny: Services, texts: Texts) -> None:
    uid = await wechat_buyer(cny)
    keys = [f"{i}" + "卡" * 500 for i in range(3)]  # 1501 bytes each: one a message
    order = await delivered(cny, uid, keys)
    parts = plain(await render(outgoing(cny, texts, uid, KeysDelivered(order.ref), public_url=PUBLIC)))
    assert len(parts) == 3 and all(len(p.encode()) <= TEXT_MAX_BYTES for p in parts)
    assert [k for k in keys if not any(k in p for p in parts)] == []
    assert parts[1].startswith("(2/3)\n")


async def test_a_key_wechat_would_read_as_a_link_gets_the_order_page(cny: Services, texts: Texts) -> None:
    uid = await wechat_buyer(cny)
    order = await delivered(cny, uid, ["NORMAL-1", '<a href="https://evil.example">点我</a>'])
    [text] = await render(outgoing(cny, texts, uid, KeysDelivered(order.ref), public_url=PUBLIC))
    assert "/wechat/order/" in str(text) and "NORMAL-1" not in str(text) and "evil" not in str(text)


async def test_manual_content_over_several_lines_gets_the_order_page(cny: Services, texts: Texts) -> None:
    """An admin's hand delivery keeps its lines: in a text they would read as several keys."""
    uid = await wechat_buyer(cny)
    order = await delivered_by_hand(cny, uid, "账号：a@example.com\n密码：pa55")
    [text] = await render(outgoing(cny, texts, uid, KeysDelivered(order.ref), public_url=PUBLIC))
    assert "/wechat/order/" in str(text) and "pa55" not in str(text)
    no_page = plain(await render(outgoing(cny, texts, uid, KeysDelivered(order.ref))))
    assert "账号：a@example.com[U+000A]密码：pa55" in "\n".join(no_page)


async def test_without_an_order_page_every_key_goes_in_parts_marked_where_the_chat_cannot_show_it(
    cny: Services, texts: Texts
) -> None:
    uid = await wechat_buyer(cny)
    keys = [f"LONG-{i:03d}-" + "y" * 300 for i in range(30)] + ["ABCD<x>"]
    order = await delivered(cny, uid, keys, max_qty=40)
    parts = plain(await render(outgoing(cny, texts, uid, KeysDelivered(order.ref))))
    assert len(parts) > 3 and all(len(p.encode()) <= TEXT_MAX_BYTES for p in parts)
    joined = "\n".join(parts)
    assert all(k in joined for k in keys[:-1])
    assert "ABCD[U+003C]x>" in joined and "<x>" not in joined
    assert "订单" in parts[0]  # the buyer is told how to get the rest should the window close


async def test_a_key_longer_than_a_message_is_cut_over_parts_without_a_page(
    cny: Services, texts: Texts
) -> None:
    uid = await wechat_buyer(cny)
    order = await delivered_by_hand(cny, uid, "Z" * 4000)
    parts = plain(await render(outgoing(cny, texts, uid, KeysDelivered(order.ref))))
    assert len(parts) == 3 and all(len(p.encode()) <= TEXT_MAX_BYTES for p in parts)
    pieces = [line for p in parts for line in p.split("\n") if set(line) == {"Z"}]
    assert "".join(pieces) == "Z" * 4000 and len(pieces) == 3  # a piece in each, the first after the head


async def test_a_delivery_breaks_into_the_same_parts_in_either_language(cny: Services, texts: Texts) -> None:
    """A delivery interrupted after its first parts goes on with the same parts, whatever the buyer's
    language by then."""
    uid = await wechat_buyer(cny)
    order = await delivered(cny, uid, [f"K{i:02d}-" + "q" * 200 for i in range(25)], max_qty=30)
    zh = plain(await render(outgoing(cny, texts, uid, KeysDelivered(order.ref), "zh_CN")))
    en = plain(await render(outgoing(cny, texts, uid, KeysDelivered(order.ref), "en")))
    assert len(zh) == len(en) > 1 and zh[1:] == en[1:]
    assert zh[0].split("\n\n", 1)[1] == en[0].split("\n\n", 1)[1]


async def test_keys_of_an_order_refunded_meanwhile_are_not_sent(cny: Services, texts: Texts) -> None:
    from core.errors import ShopError

    uid = await wechat_buyer(cny)
    order = await delivered(cny, uid, ["K-1"])
    await cny.refunds.request_refund(order.ref, actor="admin:1")
    with pytest.raises(ShopError):
        await render(outgoing(cny, texts, uid, KeysDelivered(order.ref)))
