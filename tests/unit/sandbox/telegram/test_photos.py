"""sendPhoto and sendDocument refuse what Telegram refuses: a photo is read for its real dimensions (PNG,
JPEG, GIF headers), must be an image, at most 10 MB, width + height at most 10000 and a side ratio at most
20; any uploaded file is at most 50 MB (413 "Request Entity Too Large", over HTTP too)."""

from __future__ import annotations

import io
import struct

import aiohttp
from PIL import Image

from sandbox.telegram import Emulator, serve
from sandbox.telegram.limits import PHOTO_MAX_BYTES, UPLOAD_MAX_BYTES, image_size
from tests.unit.sandbox.telegram.conftest import TOKEN, USER, call, refused


def _image(width: int, height: int, fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format=fmt)
    return out.getvalue()


def _png_header(width: int, height: int, pad: int = 0) -> bytes:
    """A PNG's signature and IHDR chunk (what Telegram reads the dimensions from), then ``pad`` bytes."""
    ihdr = struct.pack(">II", width, height) + bytes((8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\0\0\0\0" + b"\0" * pad


async def _photo(emu: Emulator, data: bytes) -> list[dict[str, int]]:
    msg = await call(emu, "sendPhoto", chat_id=USER, photo=("chart.png", data))
    return list(msg["photo"])


async def test_a_photo_is_recorded_with_its_real_dimensions_largest_last(emu: Emulator) -> None:
    png = _image(1080, 1500, "PNG")
    sizes = await _photo(emu, png)
    assert (sizes[-1]["width"], sizes[-1]["height"]) == (1080, 1500)
    assert sizes[-1]["file_size"] == len(png) and emu.files[sizes[-1]["file_id"]][1] == png
    # Telegram's thumbnails, boxed to 90, 320, 800 and 1280 on the longer side
    assert [max(s["width"], s["height"]) for s in sizes] == [90, 320, 800, 1280, 1500]
    assert len({s["file_id"] for s in sizes}) == len(sizes)


async def test_jpeg_and_gif_dimensions_are_read_from_their_headers(emu: Emulator) -> None:
    for fmt, (w, h) in (("JPEG", (640, 480)), ("JPEG", (33, 17)), ("GIF", (50, 70))):
        data = _image(w, h, fmt)
        assert image_size(data) == (w, h)
        largest = (await _photo(emu, data))[-1]
        assert (largest["width"], largest["height"]) == (w, h)


async def test_a_photo_larger_than_2560_is_kept_boxed_to_2560(emu: Emulator) -> None:
    sizes = await _photo(emu, _png_header(5120, 2560))
    assert (sizes[-1]["width"], sizes[-1]["height"]) == (2560, 1280)


async def test_something_that_is_not_an_image_is_refused_as_image_process_failed(emu: Emulator) -> None:
    for data in (b"hello, I am a text file\n", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xda\0\0", b"GIF8"):
        e = await refused(emu, "sendPhoto", chat_id=USER, photo=("chart.png", data))
        assert (e.code, e.description) == (400, "Bad Request: IMAGE_PROCESS_FAILED")
    e = await refused(emu, "sendPhoto", chat_id=USER, photo=("zero.png", _png_header(0, 100)))
    assert e.description == "Bad Request: IMAGE_PROCESS_FAILED"


async def test_a_photo_over_10_mb_is_refused_and_one_of_10_mb_is_sent(emu: Emulator) -> None:
    at_limit = _png_header(800, 600)
    at_limit += b"\0" * (PHOTO_MAX_BYTES - len(at_limit))
    assert (await _photo(emu, at_limit))[-1]["width"] == 800
    e = await refused(emu, "sendPhoto", chat_id=USER, photo=("big.png", at_limit + b"\0"))
    assert e.code == 400
    assert e.description == (
        f"Bad Request: file of size {PHOTO_MAX_BYTES + 1} bytes is too big for a photo; "
        f"the maximum size is {PHOTO_MAX_BYTES} bytes"
    )


async def test_width_and_height_must_not_exceed_10000_in_total(emu: Emulator) -> None:
    assert (await _photo(emu, _png_header(5000, 5000)))[-1]["file_size"]
    for w, h in ((5000, 5001), (9000, 1001), (10000, 10000)):
        e = await refused(emu, "sendPhoto", chat_id=USER, photo=("p.png", _png_header(w, h)))
        assert (e.code, e.description) == (400, "Bad Request: PHOTO_INVALID_DIMENSIONS")


async def test_the_ratio_of_width_and_height_must_be_at_most_20(emu: Emulator) -> None:
    await _photo(emu, _png_header(2000, 100))
    await _photo(emu, _png_header(100, 2000))
    for w, h in ((2001, 100), (100, 2001), (21, 1)):
        e = await refused(emu, "sendPhoto", chat_id=USER, photo=("p.png", _png_header(w, h)))
        assert e.description == "Bad Request: PHOTO_INVALID_DIMENSIONS"


async def test_a_document_over_50_mb_is_refused_with_413_and_one_of_50_mb_is_sent(emu: Emulator) -> None:
    msg = await call(emu, "sendDocument", chat_id=USER, document=("k.txt", b"K" * UPLOAD_MAX_BYTES))
    assert msg["document"]["file_size"] == UPLOAD_MAX_BYTES
    e = await refused(emu, "sendDocument", chat_id=USER, document=("k.txt", b"K" * (UPLOAD_MAX_BYTES + 1)))
    assert (e.code, e.description) == (413, "Request Entity Too Large")


async def test_over_http_a_50_mb_document_is_sent_and_a_bigger_request_gets_telegrams_413(
    emu: Emulator,
) -> None:
    runner, url = await serve(emu)

    async def send(size: int) -> tuple[int, dict[str, object]]:
        form = aiohttp.FormData()
        form.add_field("chat_id", str(USER))
        form.add_field("document", io.BytesIO(b"K" * size), filename="keys.txt")
        async with http.post(f"{url}/bot{TOKEN}/sendDocument", data=form) as resp:
            return resp.status, await resp.json()

    try:
        async with aiohttp.ClientSession() as http:
            status, body = await send(UPLOAD_MAX_BYTES)
            assert status == 200 and body["ok"] is True
            too_big = {"ok": False, "error_code": 413, "description": "Request Entity Too Large"}
            # just over the limit (the method refuses it) and far over it (the server refuses the request)
            for size in (UPLOAD_MAX_BYTES + 1, UPLOAD_MAX_BYTES + 2 * 2**20):
                assert await send(size) == (413, too_big)
    finally:
        await runner.cleanup()
