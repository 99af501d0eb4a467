"""The back office in chat, end to end through the emulator: an owner hands a scoped operator role to a
member of staff; the operator sees only the stock of their products and nothing else; a buyer never learns
an admin command exists; every refusal is audited. In English and Simplified Chinese."""

from __future__ import annotations

import asyncio

from core.models import Product
from core.repositories.audit import AuditEntry
from core.roles import Grant, Role
from handlers.telegram.admin.common import redacted
from handlers.telegram.admin.refusals import ADMIN_COMMAND_POWERS, ADMIN_COMMANDS
from handlers.telegram.ui.callbacks import (
    AdminCb,
    AuditPageCb,
    BroadcastAudienceCb,
    BroadcastCb,
    DistributorCb,
    DistributorsCb,
    EditCategoryCb,
    EditorCb,
    EditorChoiceCb,
    EditorFieldCb,
    EditProductCb,
    OrderActCb,
    OrderInputCb,
    OrderListCb,
    OrderViewCb,
    PayoutCb,
    StaffRemoveCb,
    StatsCb,
    StockCancelCb,
    StockExportCb,
    StockImportCb,
    StockVoidBatchCb,
    StockVoidKeyCb,
)
from sandbox.telegram.chats import Sent
from tests.e2e.conftest import ADMIN, Shop

OWNER, OPERATOR, BUYER = 900_002, 900_010, 601  # OWNER: a second owner (messages to ADMIN count as alerts)
STAFF_ADMIN = 900_020  # an admin: everything but staff, key export and the audit trail
# What the operator may do: /admin, /stock and orders (of their products); the rest is beyond their role.
OPERATOR_MAY = {"admin", "stock", "import", "void", "order", "orders_pending"}
NO_ORDER = "NOSUCHORDER42"
THEIRS, OTHER = 1, 2  # the products _setup makes: the operator's, and one beyond their scope
# Forged pages of order lists: the buyer's (shop user 1) and import 2's are of OTHER, beyond the operator.
ORDER_PAGES = [
    OrderListCb(kind="p", key=0, page=1, at=5).pack(),
    OrderListCb(kind="b", key=1, page=0).pack(),
    OrderListCb(kind="i", key=2, page=3, at=9, back=True).pack(),
]
ADMIN_BUTTONS = [
    AdminCb(screen=s).pack()
    for s in (
        "menu",
        "staff",
        "stock",
        "products",
        "orders",
        "buyers",
        "stats",
        "audit",
        "broadcast",
        "distributors",
    )
] + [
    StaffRemoveCb(tg_id=OPERATOR).pack(),
    StockImportCb(product_id=OTHER).pack(),
    StockCancelCb(what="import").pack(),
    StockVoidKeyCb(product_id=OTHER, key_id=1).pack(),
    StockVoidBatchCb(product_id=OTHER, import_id=2).pack(),
    StockExportCb(product_id=THEIRS).pack(),
    OrderViewCb(ref=NO_ORDER).pack(),
    *(
        OrderActCb(ref=NO_ORDER, act=a, sure=sure).pack()
        for a in ("deliver", "resend", "refund", "cancel", "paid", "byhand")
        for sure in (False, True)
    ),
    OrderInputCb(ref=NO_ORDER, act="paid").pack(),
    OrderInputCb(ref=NO_ORDER, act="paid_commission").pack(),
    OrderInputCb(ref=NO_ORDER, act="stop").pack(),
    *ORDER_PAGES,
    "aol:p:7:0:0:0",  # pending has no key
    "aol:b:0:0:0:0",  # a buyer's list needs one
    "aol:i:1:0:0:1",  # back needs an order to start from
    "aol:x:1:0:0:0",
    "aol:b:99999999999999999999999:0:0:0",
    "aol:b:1:-1:0:0",
    StatsCb(days=7).pack(),
    StatsCb(days=30, chart=True).pack(),
    AuditPageCb(page=1).pack(),
    AuditPageCb(page=0, by="actor", q=f"telegram.{OWNER}").pack(),
    BroadcastAudienceCb(kind="all").pack(),
    BroadcastAudienceCb(kind="product", product_id=1).pack(),
    BroadcastAudienceCb(kind="active").pack(),
    *(BroadcastCb(action=a, broadcast_id=1).pack() for a in ("go", "edit", "drop", "stop")),  # type: ignore[arg-type]
    "aba:everyone:0",
    "abc:go:99999999999999999999999",
    *(EditorCb(action=a).pack() for a in ("new", "cats", "newcat", "save", "back", "cancel", "keep")),
    EditorChoiceCb(value="shared").pack(),
    EditorFieldCb(field="price").pack(),
    EditProductCb(product_id=1).pack(),
    EditCategoryCb(category_id=1).pack(),
    DistributorsCb(currency="USD").pack(),
    DistributorsCb(currency="XTR", page=2).pack(),
    *(
        DistributorCb(user_id=1, act=a, sure=sure).pack()  # type: ignore[arg-type]
        for a in ("show", "rates", "block", "unblock")
        for sure in (False, True)
    ),
    "adi:usd:0",
    "adi:USD:-1",
    "adic:0:show:0",
    "adic:99999999999999999999999:show:0",
    "adic:1:nuke:1",
    "aep:99999999999999999999999",
    "aev:<b>",
    "aef:nonsense",
    "aen:",
    "am:nonsense",
    "asr:99999999999999999999999",
    f"aoa:{NO_ORDER}:nuke:1",
    f"aoa:{NO_ORDER}:byhand:2",
    "aoa:<b>:byhand:1",
    "aov:" + "x" * 40,
    "aoi:<b>:paid",
    "ats:2:0",
    "ats:7:1:extra",
    "aap:-1:all:",
    "aap:0:order:<b>",
    "aki:abc",
    "akv:2",
    "akx:99999999999999999999999",
    "akc:nonsense",
    PayoutCb(action="list").pack(),
    PayoutCb(action="list", page=2).pack(),
    *(
        PayoutCb(action=a, payout_id=1).pack()  # type: ignore[arg-type]
        for a in ("approve", "reject", "paid", "rejectok", "paidok", "stop")
    ),
    "apo:approve:0:0",
    "apo:list:7:0",
    "apo:nuke:1:0",
    "apo:paid:99999999999999999999999:0",
    "a:",
]
# Buttons an operator may press: the screens they reach, and orders (of another product or none: not found).
OPERATOR_SCREENS = ("am:menu", "am:stock", "am:orders", "akc:import")
ORDER_BUTTONS = {d for d in ADMIN_BUTTONS if d.startswith(("aov:", "aoa:", "aoi:")) and "nuke" not in d}
ORDER_BUTTONS -= {"aov:" + "x" * 40, "aoi:<b>:paid", f"aoa:{NO_ORDER}:byhand:2", "aoa:<b>:byhand:1"}
# Commands of the operator's role aimed at a product beyond their scope.
OUT_OF_SCOPE = (f"/void {OTHER} KEY-{OTHER}-0000", f"/void {OTHER} batch 2")


async def _refusals(shop: Shop) -> list[AuditEntry]:
    from sqlalchemy import select

    from core import tables as t
    from core.context import UnitOfWork

    def read(uow: UnitOfWork) -> list[AuditEntry]:
        a = t.audit_log
        q = select(a.c.actor, a.c.detail).where(a.c.action == "admin_refused").order_by(a.c.id)
        return [AuditEntry(r[0], r[1]) for r in uow.repo.conn.execute(q).all()]

    return await shop.services.ctx.read(read)


async def _tapped(shop: Shop, user: int, sent: Sent, data: str) -> int:
    """Tap ``data``; how many messages ``user`` had before (for ``wait_for``)."""
    before = len(shop.emu.messages(user))
    await shop.tap_data(user, sent, data)
    return before


async def _setup(shop: Shop, tap_rate: float | None = None) -> tuple[int, int]:
    shop.emu.user(OWNER, "Owen")
    shop.emu.user(OPERATOR, "Olga")
    shop.emu.user(BUYER, "Ann")
    await shop.rebuild(admin_ids=[ADMIN, OWNER], tap_rate=tap_rate, brisk=tap_rate is not None)
    theirs = await shop.product(keys=3, name="Netflix 1M", low_stock_threshold=5)
    other = await shop.product(keys=20, name="Steam 10")
    assert (theirs, other) == (THEIRS, OTHER)
    reply = await shop.say(OWNER, f"/staff operator {OPERATOR} p:{theirs}")
    assert "Saved" in reply.text and f"only p:{theirs}" in reply.text
    return theirs, other


async def test_an_owner_runs_stock_products_and_staff_and_a_scoped_operator_sees_only_their_stock(
    shop: Shop,
) -> None:
    theirs, other = await _setup(shop)
    menu = await shop.say(OWNER, "/admin")
    assert "owner" in menu.text
    assert [b["text"] for b in menu.buttons] == [
        "📦 Stock",
        "🛍 Products",
        "👥 Staff",
        "🧾 Orders",
        "🙋 Buyers",
        "📊 Reports",
        "📜 Audit log",
        "📣 Broadcast",
        "🤝 Distributors",
    ]
    stock = await shop.tap(OWNER, menu, "Stock")
    assert "Netflix 1M" in stock.text and "Steam 10" in stock.text
    assert "LOW #" in stock.text and f"#{theirs} Netflix 1M: 3 / 0 / 0" in stock.text
    assert "/import ID" in stock.text and "/void ID KEY" in stock.text and "/export ID" in stock.text

    op_menu = await shop.say(OPERATOR, "/admin")
    assert "operator" in op_menu.text and "only the products you were given" in op_menu.text
    assert [b["text"] for b in op_menu.buttons] == ["📦 Stock", "🧾 Orders"]
    op_stock = await shop.say(OPERATOR, "/stock")
    assert "Netflix 1M" in op_stock.text and "Steam 10" not in op_stock.text
    assert "/import ID" in op_stock.text and "/export" not in op_stock.text  # export: owners only

    # the owner edits the other product; the operator may not
    assert "(hidden)" in (await shop.say(OWNER, f"/hide {other}")).text
    assert "$9.90 / 50 ⭐" in (await shop.say(OWNER, f"/price {other} 9.90")).text
    assert "75 ⭐" in (await shop.say(OWNER, f"/price {other} 75 stars")).text
    assert "not part of your role" in (await shop.say(OPERATOR, f"/show {other}")).text
    product: Product = next(p for p in await shop.services.catalog.products() if p.id == other)
    assert (product.active, product.price, product.price_stars) == (False, 990, 75)

    staff = await shop.tap(OWNER, await shop.say(OWNER, "/admin"), "Staff")
    assert f"{OPERATOR}" in staff.text
    after = await shop.tap(OWNER, staff, f"Remove {OPERATOR}")
    assert "No staff yet" in after.text
    assert "I don't know that command" in (await shop.say(OPERATOR, "/stock")).text


async def test_every_admin_command_and_button_is_refused_to_a_buyer_and_beyond_an_operators_role(
    shop: Shop,
) -> None:
    await _setup(shop, tap_rate=100)  # the walk is about refusals, not the tap throttle
    shop.emu.user(STAFF_ADMIN, "Ada")
    await shop.say(OWNER, f"/staff admin {STAFF_ADMIN}")
    admin_grant = Grant(Role.ADMIN)
    unknown = (await shop.say(BUYER, "/no_such_command")).text
    for command in ADMIN_COMMANDS:
        assert (await shop.say(BUYER, f"/{command} 1")).text == unknown, command
        reply = (await shop.say(OPERATOR, f"/{command} 1")).text
        if command not in OPERATOR_MAY:
            assert "not part of your role" in reply, command
        power = ADMIN_COMMAND_POWERS[command]
        if power is not None and not admin_grant.may(power):
            assert "not part of your role" in (await shop.say(STAFF_ADMIN, f"/{command} 1")).text, command
    for text in OUT_OF_SCOPE:
        assert "not part of your role" in (await shop.say(OPERATOR, text)).text, text
    before = len(shop.emu.messages(OPERATOR))
    await shop.emu.upload(OPERATOR, "keys.txt", b"X-1\n", caption=f"/import {OTHER}")
    assert "not part of your role" in (await shop.emu.wait_for(OPERATOR, after=before)).text
    await shop.emu.upload(BUYER, "keys.txt", b"X-1\n", caption=f"/import {THEIRS}")  # no answer, audited
    menu = await shop.say(BUYER, "/start")
    op_menu = await shop.say(OPERATOR, "/admin")
    admin_menu = await shop.say(STAFF_ADMIN, "/admin")
    for data in ADMIN_BUTTONS:
        if data.startswith(("am:staff", "am:audit", "asr:", "aap:", "akx:")):  # beyond an admin's role
            answer = await shop.answer_to(await shop.tap_data(STAFF_ADMIN, admin_menu, data))
            assert "not part of your role" in str(answer["text"]), data
        answer = await shop.answer_to(await shop.tap_data(BUYER, menu, data))
        assert "out of date" in str(answer["text"]) and answer["show_alert"], data
        if data.startswith(OPERATOR_SCREENS):
            continue
        if data in ORDER_PAGES:  # the operator's page lists nothing of OTHER's
            page = await shop.emu.wait_for(OPERATOR, after=await _tapped(shop, OPERATOR, op_menu, data))
            assert "No orders." in page.text and "Steam 10" not in page.text, data
            continue
        answer = await shop.answer_to(await shop.tap_data(OPERATOR, op_menu, data))
        expected = "Order not found" if data in ORDER_BUTTONS else "not part of your role"
        assert expected in str(answer["text"]), data
    await asyncio.sleep(0.2)
    refused = await _refusals(shop)
    buyer_refusals = [e for e in refused if e.action == f"telegram:{BUYER}"]
    assert len(buyer_refusals) == len(ADMIN_COMMANDS) + len(ADMIN_BUTTONS) + 1  # + the /import document
    assert any(e.detail["what"] == "/staff 1" for e in buyer_refusals)
    assert any(e.detail["what"] == f"/import {THEIRS}" for e in buyer_refusals)
    operator_refusals = {e.detail["what"] for e in refused if e.action == f"telegram:{OPERATOR}"}
    assert {
        *map(redacted, OUT_OF_SCOPE),  # the key typed into /void masked
        f"/import {OTHER}",
        StockVoidKeyCb(product_id=OTHER, key_id=1).pack(),
    } <= operator_refusals
    # and no alert reached the owners: the fixture fails a test in which any message reached ADMIN


async def test_the_back_office_speaks_chinese(shop: Shop) -> None:
    shop.emu.user(OPERATOR, "Olga", "zh-hans")
    theirs, _ = await _setup(shop)
    menu = await shop.say(OPERATOR, "/admin")
    assert "后台管理" in menu.text and "运营" in menu.text
    assert [b["text"] for b in menu.buttons] == ["📦 库存", "🧾 订单"]
    stock = await shop.tap(OPERATOR, menu, "库存")
    assert "库存不足" in stock.text and f"#{theirs}" in stock.text
    assert "不在您的角色权限" in (await shop.say(OPERATOR, "/price 1 1")).text


async def test_malformed_and_absurd_admin_input_gets_a_clear_answer_and_changes_nothing(shop: Shop) -> None:
    theirs, other = await _setup(shop)
    before = await shop.services.catalog.products()
    for text, expected in [
        (f"/price {other} 99999999999999999999", "not valid"),
        (f"/price {other} 1.234", "not valid"),
        (f"/price {other} -5", "Usage"),
        ("/price 99999999999999999999999 5", "Usage"),
        ("/hide 12345", "no longer exists"),
        ("/hide <b>1</b>", "Usage"),
        ("/staff operator abc", "Add or change"),
        (f"/staff operator {OPERATOR} p:999", "no longer exists"),
        (f"/staff admin {OWNER}", "is an owner"),
        ("/staff remove 424242", "is not staff"),
    ]:
        reply = (await shop.say(OWNER, text)).text
        assert expected.lower() in reply.lower(), (text, reply)
    assert await shop.services.catalog.products() == before
    members = await shop.services.staff.members()
    assert [(m.external_id, sorted(m.grant.products)) for m in members] == [(str(OPERATOR), [theirs])]
