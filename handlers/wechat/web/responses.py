"""The WeChat pages' answers: never cached, and HTML under a strict Content-Security-Policy (no external
assets, scripts only by the page's nonce, no framing, no referrer)."""

from __future__ import annotations

from aiohttp import web

from handlers.wechat.web.pages import Page


def redirect(url: str) -> web.Response:
    """A 302 to ``url``, not cached."""
    response = web.Response(status=302, headers={"Location": url})
    no_store_header(response)
    return response


def no_store_header(response: web.StreamResponse) -> None:
    """Nothing under the pages is kept by a browser or a proxy: an order page shows keys."""
    response.headers["Cache-Control"] = "no-store"


def html(page: Page, status: int = 200) -> web.Response:
    """``page`` as the answer, its inline script allowed by its nonce and nothing else."""
    response = web.Response(text=page.html, status=status, content_type="text/html", charset="utf-8")
    no_store_header(response)
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'nonce-{page.nonce}'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
