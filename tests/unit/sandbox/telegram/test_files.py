"""Files: what a user uploads, the bot downloads through getFile and the file URL, up to Telegram's 20 MB; and
a progress message's rule: an edit that changes nothing is refused."""

from __future__ import annotations

import aiohttp

from sandbox.telegram import Emulator, serve
from sandbox.telegram.limits import DOWNLOAD_MAX_BYTES
from tests.unit.sandbox.telegram.conftest import TOKEN, USER, call, refused


async def _uploaded(emu: Emulator, data: bytes) -> str:
    update = await emu.upload(USER, "keys.txt", data, caption="/import 1")
    return str(update["message"]["document"]["file_id"])


async def test_a_bot_downloads_a_file_of_up_to_20_mb_through_get_file_and_the_file_url(emu: Emulator) -> None:
    data = b"K" * DOWNLOAD_MAX_BYTES
    file_id = await _uploaded(emu, data)
    info = await call(emu, "getFile", file_id=file_id)
    assert info["file_size"] == DOWNLOAD_MAX_BYTES and info["file_path"]
    runner, url = await serve(emu)
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{url}/file/bot{TOKEN}/{info['file_path']}") as resp,
        ):
            assert resp.status == 200 and await resp.read() == data
    finally:
        await runner.cleanup()


async def test_get_file_refuses_a_file_over_20_mb_as_telegram_does(emu: Emulator) -> None:
    file_id = await _uploaded(emu, b"K" * (DOWNLOAD_MAX_BYTES + 1))
    e = await refused(emu, "getFile", file_id=file_id)
    assert e.code == 400 and e.description == "Bad Request: file is too big"
    runner, url = await serve(emu)
    try:  # nor is there a URL to fetch it from
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{url}/file/bot{TOKEN}/documents/{file_id}") as resp,
        ):
            assert resp.status == 404
    finally:
        await runner.cleanup()


async def test_an_unknown_file_id_is_refused(emu: Emulator) -> None:
    e = await refused(emu, "getFile", file_id="DOCnope")
    assert e.code == 400 and "invalid file_id" in e.description


async def test_a_progress_message_edited_to_the_same_text_is_refused_as_not_modified(emu: Emulator) -> None:
    msg = await call(emu, "sendMessage", chat_id=USER, text="Importing: 10,000 keys")
    await call(emu, "editMessageText", chat_id=USER, message_id=msg["message_id"], text="20,000 keys")
    e = await refused(emu, "editMessageText", chat_id=USER, message_id=msg["message_id"], text="20,000 keys")
    assert e.code == 400 and "message is not modified" in e.description
