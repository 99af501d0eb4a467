"""The back office in chat, end to end through the emulator: an owner hands a scoped operator role to a
member of staff; the operator sees only the stock of their products and nothing else; a buyer never learns
an admin command exists; every refusal is audited. In English and Simplified Chinese."""

from __future__ import annotations

import asyncio

from core.models import Product
from core.repositories.audit import AuditEntry
from handlers.telegram.admin.refusals import ADMIN_COMMANDS
from handlers.telegram.ui.callbacks import (
    AdminCb,
    EditCategoryCb,
    EditorCb,
    EditorChoiceCb,
    EditorFieldCb,
    EditProductCb,
    StaffRemoveCb,
)
from tests.e2e.conftest import ADMIN, Shop

OWNER, OPERATOR, BUYER = 900_002, 900_010, 601  # OWNER: a second owner (messages to ADMIN count as alerts)
# What the operator may do: /admin and /stock; everything else is beyond their role.
OPERATOR_MAY = {"admin", "stock"}
ADMIN_BUTTONS = [AdminCb(screen=s).pack() for s in ("menu", "staff", "stock", "products")] + [
    StaffRemoveCb(tg_id=OPERATOR).pack(),
    *(EditorCb(action=a).pack() for a in ("new", "cats", "newcat", "save", "back", "cancel", "keep")),
    EditorChoiceCb(value="shared").pack(),
    EditorFieldCb(field="price").pack(),
    EditProductCb(product_id=1).pack(),
    EditCategoryCb(category_id=1).pack(),
    "aep:99999999999999999999999",
    "aev:<b>",
    "aef:nonsense",
    "aen:",
    "am:nonsense",
    "asr:99999999999999999999999",
    "a:",
]


async def _refusals(shop: Shop) -> list[AuditEntry]:
    from sqlalchemy import select

    from core import tables as t
    from core.context import UnitOfWork

    def read(uow: UnitOfWork) -> list[AuditEntry]:
        a = t.audit_log
        q = select(a.c.actor, a.c.detail).where(a.c.action == "admin_refused").order_by(a.c.id)
        return [AuditEntry(r[0], r[1]) for r in uow.repo.conn.execute(q).all()]

    return await shop.services.ctx.read(read)


async def _setup(shop: Shop) -> tuple[int, int]:
    shop.emu.user(OWNER, "Owen")
    shop.emu.user(OPERATOR, "Olga")
    shop.emu.user(BUYER, "Ann")
    await shop.rebuild(admin_ids=[ADMIN, OWNER])
    theirs = await shop.product(keys=3, name="Netflix 1M", low_stock_threshold=5)
    other = await shop.product(keys=20, name="Steam 10")
    reply = await shop.say(OWNER, f"/staff operator {OPERATOR} p:{theirs}")
    assert "Saved" in reply.text and f"only p:{theirs}" in reply.text
    return theirs, other


async def test_an_owner_runs_stock_products_and_staff_and_a_scoped_operator_sees_only_their_stock(
    shop: Shop,
) -> None:
    theirs, other = await _setup(shop)
    menu = await shop.say(OWNER, "/admin")
    assert "owner" in menu.text
    assert [b["text"] for b in menu.buttons] == ["📦 Stock", "🛍 Products", "👥 Staff"]
    stock = await shop.tap(OWNER, menu, "Stock")
    assert "Netflix 1M" in stock.text and "Steam 10" in stock.text
    assert "LOW #" in stock.text and f"#{theirs} Netflix 1M: 3 / 0 / 0" in stock.text

    op_menu = await shop.say(OPERATOR, "/admin")
    assert "operator" in op_menu.text and "only the products you were given" in op_menu.text
    assert [b["text"] for b in op_menu.buttons] == ["📦 Stock"]
    op_stock = await shop.say(OPERATOR, "/stock")
    assert "Netflix 1M" in op_stock.text and "Steam 10" not in op_stock.text

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
    await _setup(shop)
    unknown = (await shop.say(BUYER, "/no_such_command")).text
    for command in ADMIN_COMMANDS:
        assert (await shop.say(BUYER, f"/{command} 1")).text == unknown, command
        reply = (await shop.say(OPERATOR, f"/{command} 1")).text
        if command not in OPERATOR_MAY:
            assert "not part of your role" in reply, command
    menu = await shop.say(BUYER, "/start")
    op_menu = await shop.say(OPERATOR, "/admin")
    for data in ADMIN_BUTTONS:
        await asyncio.sleep(0.5)  # a person's pace: the bot drops taps faster than two a second
        answer = await shop.answer_to(await shop.tap_data(BUYER, menu, data))
        assert "out of date" in str(answer["text"]) and answer["show_alert"], data
        if data.startswith(("am:menu", "am:stock")):
            continue
        answer = await shop.answer_to(await shop.tap_data(OPERATOR, op_menu, data))
        assert "not part of your role" in str(answer["text"]), data
    await asyncio.sleep(0.2)
    refused = await _refusals(shop)
    buyer_refusals = [e for e in refused if e.action == f"telegram:{BUYER}"]
    assert len(buyer_refusals) == len(ADMIN_COMMANDS) + len(ADMIN_BUTTONS)
    assert any(e.detail["what"] == "/staff 1" for e in buyer_refusals)
    # and no alert reached the owners: the fixture fails a test in which any message reached ADMIN


async def test_the_back_office_speaks_chinese(shop: Shop) -> None:
    shop.emu.user(OPERATOR, "Olga", "zh-hans")
    theirs, _ = await _setup(shop)
    menu = await shop.say(OPERATOR, "/admin")
    assert "后台管理" in menu.text and "运营" in menu.text
    assert [b["text"] for b in menu.buttons] == ["📦 库存"]
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
