"""QR code images of links, as PNG (well within Telegram's photo limits: a few hundred pixels a side)."""

from __future__ import annotations

import io

import segno


def qr_png(data: str, *, scale: int = 8) -> bytes:
    buf = io.BytesIO()
    segno.make(data, error="m", micro=False).save(buf, kind="png", scale=scale, border=4)
    return buf.getvalue()
