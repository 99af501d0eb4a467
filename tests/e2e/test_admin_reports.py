"""/stats with its chart, /audit with its pages and filters, and each staff member's command menu, end to
end through the emulator, in English and Simplified Chinese."""

from __future__ import annotations

import struct

from core.models import STARS
from handlers.charts import HEIGHT_PX, WIDTH_PX
from handlers.telegram.ui.callbacks import AuditPageCb
from sandbox.telegram import Sent
from tests.e2e.conftest import Shop

OWNER, ADMIN2, OPERATOR, BUYER = 900_002, 900_020, 900_010, 601


async def _setup(shop: Shop, owner_language: str = "en") -> None:
    shop.emu.user(OWNER, "Owen", owner_language)
    shop.emu.user(ADMIN2, "Ada")
    shop.emu.user(OPERATOR, "Olga")
    shop.emu.user(BUYER, "Ann")
    from tests.e2e.conftest import ADMIN

    await shop.rebuild(admin_ids=[ADMIN, OWNER])


async def _sell(shop: Shop, pid: int, qty: int = 1) -> str:
    """A paid order, straight through the services (the storefront's part is tested elsewhere)."""
    user = await shop.services.users.ensure("telegram", str(BUYER), language="en")
    order = await shop.services.checkout.checkout(user.id, pid, qty, STARS)
    await shop.services.payments.confirm_payment(
        "telegram", f"ch-{order.ref}", order.ref, order.amount, STARS, payer_id=user.id
    )
    return order.ref


def _png(shop: Shop, sent: Sent) -> bytes:
    """The chart's bytes; the emulator took it as Telegram takes a photo (an image, at most 10 MB, sides at
    most 10000 in total, ratio at most 20) and records the dimensions it read from it."""
    assert sent.method == "sendPhoto"
    largest = sent.message["photo"][-1]
    png = shop.emu.files[largest["file_id"]][1]
    assert (largest["width"], largest["height"]) == _size(png) == (WIDTH_PX, HEIGHT_PX)
    return png


def _size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


async def _chart(shop: Shop, user: int, screen: Sent, label: str) -> bytes:
    before = len(shop.emu.messages(user))
    await shop.emu.tap(user, screen, screen.button(label)["callback_data"])
    photo = await shop.emu.wait_for(user, lambda s: s.method == "sendPhoto", after=before, within=30)
    return _png(shop, photo)


async def test_an_owner_sees_the_first_sale_in_stats_for_each_period_and_gets_its_chart(shop: Shop) -> None:
    await _setup(shop)
    await shop.product(keys=5, name="Steam 10")
    invoice = await shop.buy_one(BUYER)
    assert (await shop.emu.pay(BUYER, invoice))["paid"]
    await shop.emu.wait_for(BUYER, lambda s: "KEY-" in s.text)

    today = await shop.say(OWNER, "/stats")
    assert "Sales report: Today" in today.text and "(UTC)" in today.text
    assert "Revenue: 50 ⭐" in today.text and "Orders: 1 · Units: 1 · New buyers: 1" in today.text
    assert "1. Steam 10: 1 sold, 50 ⭐" in today.text and "#1 Steam 10: 4" in today.text
    week = await shop.tap(OWNER, today, "7 days")
    assert "Sales report: 7 days" in week.text and "Revenue: 50 ⭐" in week.text
    month = await shop.tap(OWNER, week, "30 days")
    assert "Sales report: 30 days" in month.text and "• 30 days" in [b["text"] for b in month.buttons]
    png = await _chart(shop, OWNER, month, "Chart")
    assert _size(png) == (1080, 1500) and 10_000 < len(png) < 2_000_000
    menu = await shop.say(OWNER, "/admin")
    assert "Sales report" in (await shop.tap(OWNER, menu, "Reports")).text


async def test_stats_and_its_chart_speak_chinese_with_chinese_product_names(shop: Shop) -> None:
    await _setup(shop, owner_language="zh-hans")
    pid = await shop.product(keys=3, name="网飞会员 月卡 <VIP>", low_stock_threshold=5)
    await _sell(shop, pid, qty=2)
    today = await shop.say(OWNER, "/stats")
    assert "销售报表：今天" in today.text and "销售额：100 ⭐" in today.text
    assert "网飞会员 月卡 <VIP>：售出 2 件" in today.text and "库存不足" in today.text
    week = await shop.tap(OWNER, today, "近 7 天")
    assert "销售报表：近 7 天" in week.text
    png = await _chart(shop, OWNER, week, "图表")
    assert _size(png) == (1080, 1500)
    caption = shop.emu.messages(OWNER)[-1].text
    assert caption.startswith("📈 销售报表：近 7 天")


async def test_an_owner_pages_the_audit_trail_and_filters_it_by_order_and_by_actor(shop: Shop) -> None:
    await _setup(shop)
    pid = await shop.product(keys=20, name="Tom & Jerry <3>")
    refs = [await _sell(shop, pid) for _ in range(6)]
    await shop.services.orders.reveal(refs[0], user_id=None, actor=f"telegram:{OWNER}", reason="admin")
    await shop.say(OWNER, f"/price {pid} 1.50")

    first = await shop.say(OWNER, "/audit")
    assert "Audit log, page 1" in first.text and "product updated" in first.text
    assert "Tom & Jerry <3>" in first.text and "keys revealed" in first.text
    assert "keys_revealed" not in first.text  # actions read as words, not as stored
    assert first.buttons[0]["text"] == "▶️" and "◀️" not in [b["text"] for b in first.buttons]
    second = await shop.tap(OWNER, first, "▶️")
    assert "page 2" in second.text and "keys delivered" in second.text
    back = await shop.tap(OWNER, second, "◀️")
    assert "page 1" in back.text

    mine = await shop.say(OWNER, f"/audit order {refs[0]}")
    assert refs[0] in mine.text and refs[1] not in mine.text and "keys revealed" in mine.text
    actor = await shop.say(OWNER, f"/audit actor telegram:{OWNER}")
    assert "keys revealed" in actor.text and "product updated" in actor.text
    assert "keys delivered" not in actor.text
    for text, expected in [
        ("/audit order NOPE-1", "Order not found"),
        ("/audit order <b>x</b>", "Filter:"),
        ("/audit actor Telegram:1", "Filter:"),
        ("/audit everything", "Filter:"),
    ]:
        assert expected in (await shop.say(OWNER, text)).text, text
    assert "Nothing recorded" in (await shop.say(OWNER, "/audit actor telegram:1")).text
    # a forged page far beyond the end is an empty page, not an error
    forged = await shop.tap_data(OWNER, first, AuditPageCb(page=9999).pack())
    await shop.answer_to(forged)


async def test_the_audit_trail_speaks_chinese(shop: Shop) -> None:
    await _setup(shop, owner_language="zh-hans")
    pid = await shop.product(keys=2, name="腾讯视频")
    ref = await _sell(shop, pid)
    await shop.say(OWNER, f"/price {pid} 1.50")
    page = await shop.say(OWNER, "/audit")
    assert "操作日志，第 1 页" in page.text and "商品 #1 腾讯视频" in page.text
    assert "筛选" in page.text
    assert "修改商品" in page.text and "卡密已发货" in page.text and "确认付款" in page.text
    assert "product_updated" not in page.text and "keys_delivered" not in page.text
    order = await shop.say(OWNER, f"/order {ref}")  # the order's own trail, in the same words
    assert "创建订单" in order.text and "卡密已发货" in order.text and "order_created" not in order.text


async def test_an_admin_sees_stats_but_not_the_audit_trail_and_an_operator_neither(shop: Shop) -> None:
    await _setup(shop)
    pid = await shop.product(keys=2)
    await shop.say(OWNER, f"/staff admin {ADMIN2}")
    await shop.say(OWNER, f"/staff operator {OPERATOR} p:{pid}")
    assert "Sales report" in (await shop.say(ADMIN2, "/stats")).text
    assert "not part of your role" in (await shop.say(ADMIN2, "/audit")).text
    menu = await shop.say(ADMIN2, "/admin")
    assert "📊 Reports" in [b["text"] for b in menu.buttons]
    assert "📜 Audit log" not in [b["text"] for b in menu.buttons]
    for command in ("/stats", "/audit", "/audit order X"):
        assert "not part of your role" in (await shop.say(OPERATOR, command)).text
    assert "I don't know that command" in (await shop.say(BUYER, "/stats")).text


async def test_each_staff_member_gets_the_command_menu_of_their_role_in_their_language(shop: Shop) -> None:
    await _setup(shop)
    buyer_menu = ["start", "catalog", "orders", "invite", "share", "withdraw", "language", "help"]
    owner = shop.emu.menu(OWNER, "en")  # set at start
    assert owner[: len(buyer_menu)] == buyer_menu
    assert {"admin", "staff", "stats", "audit", "price"} <= set(owner)
    assert shop.emu.menu(BUYER, "en") == buyer_menu

    pid = await shop.product(keys=1)
    await shop.say(OWNER, f"/staff admin {ADMIN2}")
    admin = shop.emu.menu(ADMIN2, "en")
    assert "stats" in admin and "price" in admin and "audit" not in admin and "staff" not in admin
    await shop.say(OWNER, f"/staff operator {OPERATOR} p:{pid}")
    operator_menu = [*buyer_menu, "admin", "stock", "order", "orders_pending", "import", "void"]
    assert shop.emu.menu(OPERATOR, "en") == operator_menu
    zh = shop.emu.scoped_commands[(f"chat:{OPERATOR}", "zh")]
    assert [c["description"] for c in zh][len(buyer_menu) + 1] == "库存"

    await shop.say(OWNER, f"/staff remove {OPERATOR}")
    assert shop.emu.menu(OPERATOR, "en") == buyer_menu and shop.emu.menu(OPERATOR, "zh") == buyer_menu
    await shop.say(OWNER, f"/staff operator {ADMIN2}")  # a role change changes the menu
    assert shop.emu.menu(ADMIN2, "en") == operator_menu
