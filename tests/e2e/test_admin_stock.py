"""Stock in chat, end to end through the emulator: keys uploaded as a document (with the caption
``/import ID`` or picked from buttons), the progress message and the report; malformed and oversized files;
void by value and by import batch; the owners' export, sent once and audited. In English and Chinese; an
operator reaches only their products and a buyer learns nothing."""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from typing import Any

import pytest
from sqlalchemy import select

from core import tables as t
from core.context import UnitOfWork
from core.models import STARS, DeliveryKind
from core.roles import Role
from handlers.telegram.admin import keys as keys_handlers
from handlers.telegram.admin import upload as upload_handlers
from sandbox.telegram import Sent
from sandbox.telegram.limits import DOWNLOAD_MAX_BYTES
from tests.e2e.conftest import ADMIN, Shop

OWNER, ADMIN2, OPERATOR, BUYER = 900_002, 900_011, 900_010, 601


async def _audit(shop: Shop, action: str) -> list[tuple[str, int | None, dict[str, Any]]]:
    def read(uow: UnitOfWork) -> list[tuple[str, int | None, dict[str, Any]]]:
        a = t.audit_log
        q = select(a.c.actor, a.c.product_id, a.c.detail).where(a.c.action == action).order_by(a.c.id)
        return [(r[0], r[1], r[2]) for r in uow.repo.conn.execute(q).all()]

    return await shop.services.ctx.read(read)


async def _setup(shop: Shop, *, operator_language: str = "en") -> tuple[int, int]:
    shop.emu.user(OWNER, "Owen")
    shop.emu.user(ADMIN2, "Ada")
    shop.emu.user(OPERATOR, "Olga", operator_language)
    shop.emu.user(BUYER, "Ann")
    await shop.rebuild(admin_ids=[ADMIN, OWNER], brisk=True)  # not a test of the pace
    theirs = await shop.product(keys=2, name="Netflix 1M")
    other = await shop.product(keys=3, name="Steam 10")
    staff = shop.services.staff
    await staff.put("telegram", str(OPERATOR), Role.OPERATOR, actor="test", owners=[], products=[theirs])
    await staff.put("telegram", str(ADMIN2), Role.ADMIN, actor="test", owners=[])
    return theirs, other


async def _upload(shop: Shop, user: int, name: str, data: bytes, caption: str | None = None) -> Sent:
    """Send a document; the bot's first reply."""
    before = len(shop.emu.messages(user))
    await shop.emu.upload(user, name, data, caption)
    return await shop.emu.wait_for(user, after=before, within=10)


async def _outcome(shop: Shop, user: int, sent: Sent, within: float = 15) -> Sent:
    """The last state of the progress message ``sent`` once it shows an outcome (✅ report or ❌/refusal)."""
    mid = sent.message["message_id"]

    def done(s: Sent) -> bool:
        return s.message["message_id"] == mid and not s.text.startswith("⏳")

    return await shop.emu.wait_for(user, done, within=within)


async def _available(shop: Shop, pid: int) -> int:
    return await shop.services.stock.available(pid)


def _file_sent(shop: Shop, sent: Sent) -> tuple[str, bytes]:
    return shop.emu.files[sent.message["document"]["file_id"]]


# ---------------------------------------------------------------- uploads


async def test_an_owner_uploads_keys_with_the_import_caption_and_reads_the_report(shop: Shop) -> None:
    theirs, _ = await _setup(shop)
    data = b"NEW-1\nNEW-2\n\nKEY-%d-0000\nNEW-1\nNEW-3\n" % theirs
    first = await _upload(shop, OWNER, "keys.txt", data, caption=f"/import {theirs}")
    assert first.text.startswith("⏳ Downloading keys.txt for #")
    report = await _outcome(shop, OWNER, first)
    assert f"into #{theirs} Netflix 1M: 6 lines read" in report.text
    assert "Added: 3" in report.text and "Duplicates (skipped): 2" in report.text
    assert "Invalid: 1" in report.text and "line 3: empty" in report.text
    assert await _available(shop, theirs) == 5
    imported = await _audit(shop, "keys_imported")
    assert imported[-1][0] == f"telegram:{OWNER}" and imported[-1][2]["added"] == 3


async def test_an_operator_picks_their_product_from_buttons_in_chinese(shop: Shop) -> None:
    theirs, other = await _setup(shop, operator_language="zh-hans")
    ask = await _upload(shop, OPERATOR, "卡密.csv", "卡密,备注\nCSV-1,a\nCSV-2,b\n".encode())
    assert "导入到哪个商品" in ask.text
    labels = [b["text"] for b in ask.buttons]
    assert labels == [f"#{theirs} Netflix 1M", "✖️ 取消"]  # only their product
    progress = await shop.tap(OPERATOR, ask, "Netflix")
    report = await _outcome(shop, OPERATOR, progress)
    assert "新增：2" in report.text and "重复（已跳过）：0" in report.text
    assert await _available(shop, theirs) == 4 and await _available(shop, other) == 3
    assert not report.buttons  # the picker became the report: the file is imported once
    # a product they do not manage, forged onto the picker: refused and audited, nothing imported
    ask = await _upload(shop, OPERATOR, "more.txt", b"X-1\n")
    answer = await shop.answer_to(await shop.tap_data(OPERATOR, ask, f"aki:{other}"))
    assert "不在您的角色权限" in str(answer["text"])
    cancelled = await shop.tap(OPERATOR, ask, "取消")
    assert cancelled.text == "已取消。"
    assert await _available(shop, other) == 3
    refused = await _audit(shop, "admin_refused")
    assert (f"telegram:{OPERATOR}", None, {"what": f"aki:{other}"}) in refused


async def test_the_button_path_in_english_and_the_caption_path_in_chinese(shop: Shop) -> None:
    theirs, other = await _setup(shop, operator_language="zh-hans")
    ask = await _upload(shop, OWNER, "keys.txt", b"EN-1\nEN-2\n")
    assert "Which product gets the keys in keys.txt?" in ask.text
    assert [b["text"] for b in ask.buttons] == [f"#{theirs} Netflix 1M", f"#{other} Steam 10", "✖️ Cancel"]
    report = await _outcome(shop, OWNER, await shop.tap(OWNER, ask, "Steam"))
    assert f"into #{other} Steam 10: 2 lines read" in report.text and "Added: 2" in report.text
    first = await _upload(shop, OPERATOR, "keys.txt", b"ZH-1\nZH-1\n", caption=f"/import {theirs}")
    assert first.text.startswith("⏳ 正在下载 keys.txt")
    report = await _outcome(shop, OPERATOR, first)
    assert "共读取 2 行" in report.text and "新增：1" in report.text and "重复（已跳过）：1" in report.text
    assert (await _available(shop, theirs), await _available(shop, other)) == (3, 5)


async def test_an_operator_out_of_scope_and_a_buyer_are_refused_and_nothing_is_imported(shop: Shop) -> None:
    theirs, other = await _setup(shop)
    reply = await _upload(shop, OPERATOR, "keys.txt", b"X-1\n", caption=f"/import {other}")
    assert "not part of your role" in reply.text
    # a buyer's document, with the caption or without, gets what any document gets: no answer at all
    await shop.emu.upload(BUYER, "keys.txt", b"X-1\n", caption=f"/import {theirs}")
    await shop.emu.upload(BUYER, "photo.txt", b"hello\n")
    await asyncio.sleep(0.5)
    assert shop.emu.messages(BUYER) == []
    assert (await _available(shop, theirs), await _available(shop, other)) == (2, 3)
    refused = await _audit(shop, "admin_refused")
    assert (f"telegram:{OPERATOR}", None, {"what": f"/import {other}"}) in refused
    assert (f"telegram:{BUYER}", None, {"what": f"/import {theirs}"}) in refused
    assert len([r for r in refused if r[0] == f"telegram:{BUYER}"]) == 1  # the plain document is no attempt


async def test_malformed_files_and_captions_get_a_clear_answer_and_import_nothing(shop: Shop) -> None:
    theirs, _ = await _setup(shop)
    shared = await shop.product(name="Shared", delivery_kind=DeliveryKind.SHARED)
    cases: list[tuple[str, bytes, str | None, str]] = [
        ("keys.xlsx", b"PK\x03\x04", f"/import {theirs}", "a .txt file"),
        ("keys.txt", b"\n \n\n", f"/import {theirs}", "holds no keys"),
        ("keys.txt", b"OK-1\nCAF\xe9-2\n", f"/import {theirs}", "Line 2 is not UTF-8"),
        ("keys.txt", "UTF16-1\n".encode("utf-16"), f"/import {theirs}", "Line 1 is not UTF-8"),
        ("keys.csv", b"key,note\nA,1\nB,2,3\n", f"/import {theirs}", "Line 3 has 3 columns"),
        ("keys.csv", b'key\n"open\n', f"/import {theirs}", "Line 2 is not one well-quoted CSV record"),
        ("keys.txt", b"OK-1\n", "/import 99999999999999999999", "the caption /import ID"),
        ("keys.txt", b"OK-1\n", "/import <b>1</b>", "the caption /import ID"),
        ("keys.txt", b"OK-1\n", "/import 424242", "no longer exists"),
        ("keys.txt", b"OK-1\n", f"/import {shared}", "shared-key"),
    ]
    for name, data, caption, expected in cases:
        reply = await _upload(shop, OWNER, name, data, caption)
        if reply.text.startswith("⏳"):
            reply = await _outcome(shop, OWNER, reply)
        assert expected.lower() in reply.text.lower(), (name, caption, reply.text)
    assert await _available(shop, theirs) == 2
    assert len(await _audit(shop, "keys_imported")) == 2  # the two products' own set-up imports


async def test_a_file_over_20_mb_is_sent_to_the_cli(shop: Shop) -> None:
    theirs, _ = await _setup(shop)
    reply = await _upload(
        shop, OWNER, "big.txt", b"K" * (DOWNLOAD_MAX_BYTES + 1), caption=f"/import {theirs}"
    )
    assert "20 MB" in reply.text and "keyshop keys import" in reply.text
    assert not any(m == "getFile" for m, _ in shop.emu.calls)  # told from the document's size alone


async def test_many_invalid_lines_are_listed_in_a_file_after_the_first_few(shop: Shop) -> None:
    theirs, _ = await _setup(shop)
    data = b"".join(b"GOOD-%d\n\n" % i for i in range(15))  # every second line is empty
    first = await _upload(shop, OWNER, "keys.txt", data, caption=f"/import {theirs}")
    report = await _outcome(shop, OWNER, first)
    assert "Invalid: 15" in report.text and "line 2: empty" in report.text and "line 30" not in report.text
    doc = await shop.emu.wait_for(OWNER, lambda s: s.method == "sendDocument", within=10)
    name, body = _file_sent(shop, doc)
    assert name.startswith("invalid-lines-import-") and body.decode().splitlines()[-1] == "line 30: empty"


async def test_the_invalid_lines_file_is_cut_to_what_a_bot_may_send_with_a_count_of_the_rest(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs, _ = await _setup(shop)
    monkeypatch.setattr(upload_handlers, "DOCUMENT_MAX_BYTES", 100)  # 50 MB, scaled down
    data = b"".join(b"GOOD-%d\n\n" % i for i in range(15))  # every second line is empty
    first = await _upload(shop, OWNER, "keys.txt", data, caption=f"/import {theirs}")
    assert "Invalid: 15" in (await _outcome(shop, OWNER, first)).text
    doc = await shop.emu.wait_for(OWNER, lambda s: s.method == "sendDocument", within=10)
    rows = _file_sent(shop, doc)[1].decode().splitlines()
    assert len(_file_sent(shop, doc)[1]) <= 100 and rows[0] == "line 2: empty"
    assert rows[-1] == f"… and {15 - (len(rows) - 1)} more invalid lines."


async def test_100000_keys_are_uploaded_with_the_progress_edited_no_more_than_every_2_s(shop: Shop) -> None:
    theirs, _ = await _setup(shop)
    # The bot's progress clock and the record of Telegram's edits share one clock that runs 8 times faster
    # than real time, so a 1 s import spans 8 "seconds" of edits: the rule is checked without waiting.
    start, scale = time.monotonic(), 8.0

    def clock() -> float:
        return start + (time.monotonic() - start) * scale

    shop.front.dp.workflow_data["progress_clock"] = clock
    seen: list[tuple[float, Sent]] = []
    shop.emu.on_send.append(lambda chat, sent: seen.append((clock(), sent)) if chat == OWNER else None)
    data = b"".join(b"BULK-%07d-ABCDEFGH\n" % i for i in range(100_000))
    began = time.monotonic()
    first = await _upload(shop, OWNER, "bulk.txt", data, caption=f"/import {theirs}")
    report = await _outcome(shop, OWNER, first, within=60)
    took = time.monotonic() - began
    assert "Added: 100,000" in report.text and "Invalid: 0" in report.text, report.text
    assert await _available(shop, theirs) == 100_002
    mid = first.message["message_id"]
    times = [at for at, s in seen if s.message.get("message_id") == mid]  # the send, then every edit
    edits = [s for _, s in seen if s.method == "editMessageText" and s.message["message_id"] == mid]
    assert len(edits) >= 2, [s.text for s in edits]  # progress (at least once), then the report
    assert any("Importing into" in s.text and "a second" in s.text for s in edits)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 2.0, gaps
    print(f"100,000 keys: {took:.2f} s from upload to report, {len(edits)} edits")


# ---------------------------------------------------------------- void


async def test_an_owner_voids_a_key_by_value_but_never_a_sold_one(shop: Shop) -> None:
    theirs, _ = await _setup(shop)
    ask = await shop.say(OWNER, f"/void {theirs}  KEY-{theirs}-0001 ")
    assert f"Void the key KE••••••01 of #{theirs} Netflix 1M?" in ask.text  # masked
    confirm = ask.button("Void")["callback_data"]
    done = await shop.tap(OWNER, ask, "Void")
    assert f"Voided 1 keys of #{theirs}" in done.text
    assert await _available(shop, theirs) == 1
    assert "void already" in (await shop.say(OWNER, f"/void {theirs} KEY-{theirs}-0001")).text
    before = len(shop.emu.messages(OWNER))
    await shop.tap_data(OWNER, ask, confirm)  # the same confirmation a second time
    again = await shop.emu.wait_for(OWNER, after=before)
    assert "Nothing was voided" in again.text
    # sold: never voided this way
    uid = (await shop.services.users.ensure("telegram", "777")).id
    order = await shop.services.checkout.checkout(uid, theirs, 1, STARS)
    await shop.services.payments.confirm_payment("telegram", "ch-v", order.ref, order.amount, STARS)
    held = await shop.say(OWNER, f"/void {theirs} KEY-{theirs}-0000")
    assert "is sold: keys of orders are never voided" in held.text and not held.buttons
    assert "has no such key" in (await shop.say(OWNER, f"/void {theirs} <b>NOPE</b>")).text
    assert (await _audit(shop, "keys_voided"))[0][0] == f"telegram:{OWNER}"


async def test_an_operator_voids_an_import_batch_of_their_product_in_chinese(shop: Shop) -> None:
    theirs, other = await _setup(shop, operator_language="zh-hans")
    rep = await shop.services.stock.import_keys(theirs, io.BytesIO(b"B-1\nB-2\nB-3\n"))
    ask = await shop.say(OPERATOR, f"/void {theirs} batch {rep.import_id}")
    assert f"导入批次 #{rep.import_id}" in ask.text and "3 个卡密" in ask.text
    done = await shop.tap(OPERATOR, ask, "作废")
    assert "已作废" in done.text and "3 个卡密" in done.text
    assert await _available(shop, theirs) == 2
    other_batch = await shop.services.stock.import_keys(other, io.BytesIO(b"O-1\n"))
    refused = await shop.say(OPERATOR, f"/void {other} batch {other_batch.import_id}")
    assert "不在您的角色权限" in refused.text
    forged = await shop.tap_data(OPERATOR, ask, f"akb:{other}:{other_batch.import_id}")
    assert "不在您的角色权限" in str((await shop.answer_to(forged))["text"])
    assert await _available(shop, other) == 4
    assert [(a, p, d) for a, p, d in await _audit(shop, "keys_voided")] == [
        (f"telegram:{OPERATOR}", theirs, {"count": 3, "import_id": rep.import_id})
    ]
    for text in ("/void", f"/void {theirs}", "/void 99999999999999999999 KEY", f"/void {theirs} batch x"):
        assert "用法" in (await shop.say(OPERATOR, text)).text, text


# ---------------------------------------------------------------- export


async def test_an_owner_exports_unsold_keys_once_and_the_reveal_is_audited(shop: Shop) -> None:
    theirs, _ = await _setup(shop)
    ask = await shop.say(OWNER, f"/export {theirs}")
    assert "Export the 2 unsold keys" in ask.text
    before = len(shop.emu.messages(OWNER))
    confirm = ask.button("Export 2 keys")["callback_data"]
    await shop.tap_data(OWNER, ask, confirm)
    doc = await shop.emu.wait_for(OWNER, lambda s: s.method == "sendDocument", after=before)
    name, body = _file_sent(shop, doc)
    assert name.startswith(f"keys-{theirs}-") and sorted(body.decode().split()) == [
        f"KEY-{theirs}-0000",
        f"KEY-{theirs}-0001",
    ]
    assert "keeps no copy" in doc.text
    await shop.emu.wait_for(OWNER, lambda s: "Sent 2 keys" in s.text, after=before)
    before = len(shop.emu.messages(OWNER))
    await shop.tap_data(OWNER, ask, confirm)  # the same confirmation: nothing more is sent
    again = await shop.emu.wait_for(OWNER, after=before)
    assert "confirmed already" in again.text
    await asyncio.sleep(0.3)
    assert sum(s.method == "sendDocument" for s in shop.emu.messages(OWNER)) == 1
    assert await _audit(shop, "keys_exported") == [
        (f"telegram:{OWNER}", theirs, {"count": 2, "request": ask.message["message_id"]})
    ]
    assert await _available(shop, theirs) == 2  # a copy: stock unchanged


@pytest.mark.parametrize(
    ("language", "shown"), [("en", "more than a bot may send"), ("zh-hans", "超过机器人单个文件的上限")]
)
async def test_an_export_too_big_for_one_document_is_refused_before_anything_is_revealed_or_audited(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, language: str, shown: str
) -> None:
    shop.emu.user(OWNER, "Owen", language)
    theirs, _ = await _setup(shop)
    monkeypatch.setattr(keys_handlers, "DOCUMENT_MAX_BYTES", 21)  # 2 keys make 22 bytes
    ask = await shop.say(OWNER, f"/export {theirs}")
    confirm = ask.buttons[0]["callback_data"]
    before = len(shop.emu.messages(OWNER))
    await shop.tap_data(OWNER, ask, confirm)
    refused = await shop.emu.wait_for(OWNER, lambda s: shown in s.text, after=before)
    assert f"keyshop keys export {theirs} FILE --yes" in refused.text
    await asyncio.sleep(0.3)
    assert not any(s.method == "sendDocument" for s in shop.emu.messages(OWNER))
    assert await _audit(shop, "keys_exported") == []  # no reveal on the trail that never reached the chat
    # the refused confirmation was not used up: within the limit the same one goes through
    monkeypatch.setattr(keys_handlers, "DOCUMENT_MAX_BYTES", 22)
    before = len(shop.emu.messages(OWNER))
    await shop.tap_data(OWNER, ask, confirm)
    doc = await shop.emu.wait_for(OWNER, lambda s: s.method == "sendDocument", after=before)
    assert len(_file_sent(shop, doc)[1]) == 22
    assert [a for a, _, _ in await _audit(shop, "keys_exported")] == [f"telegram:{OWNER}"]


async def test_export_is_for_owners_only(shop: Shop) -> None:
    theirs, _ = await _setup(shop)
    assert "not part of your role" in (await shop.say(ADMIN2, f"/export {theirs}")).text
    assert "not part of your role" in (await shop.say(OPERATOR, f"/export {theirs}")).text
    ask = await shop.say(ADMIN2, "/admin")
    answer = await shop.answer_to(await shop.tap_data(ADMIN2, ask, f"akx:{theirs}"))
    assert "not part of your role" in str(answer["text"])
    assert await _audit(shop, "keys_exported") == []
    assert "Usage" in (await shop.say(OWNER, "/export 99999999999999999999")).text
    assert "no longer exists" in (await shop.say(OWNER, "/export 424242")).text


async def test_an_owner_exports_in_chinese(shop: Shop) -> None:
    shop.emu.user(OWNER, "Owen", "zh-hans")
    theirs, _ = await _setup(shop)
    ask = await shop.say(OWNER, f"/export {theirs}")
    assert "2 个未售卡密" in ask.text
    before = len(shop.emu.messages(OWNER))
    await shop.tap(OWNER, ask, "导出")
    doc = await shop.emu.wait_for(OWNER, lambda s: s.method == "sendDocument", after=before)
    assert "店铺不保留" in doc.text
