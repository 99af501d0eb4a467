"""The WeChat pages as HTML: small, mobile-first, one file each with its style inline and nothing fetched
from elsewhere (WeChat's in-app browser on a slow phone network, and a Content-Security-Policy that allows
nothing external). Every value from the shop or a buyer is escaped; the pay parameters go into the page's
script as JSON with ``<`` escaped, under a per-response nonce.

Texts come from the gettext catalogs (``wx-page-*``) in the buyer's language."""

from __future__ import annotations

import html
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from handlers.wechat.texts import Texts

_STYLE = """
*{box-sizing:border-box}body{margin:0;font:16px/1.5 -apple-system,"PingFang SC","Noto Sans CJK SC",
"Microsoft YaHei",sans-serif;background:#f2f2f2;color:#111}main{max-width:480px;margin:0 auto;padding:20px}
.card{background:#fff;border-radius:10px;padding:20px;margin-bottom:16px}h1{font-size:20px;margin:0 0 12px}
.amount{font-size:32px;font-weight:600;margin:8px 0}.muted{color:#666;font-size:14px}
button{width:100%;border:0;border-radius:8px;background:#07c160;color:#fff;font-size:18px;padding:14px;
cursor:pointer}button[disabled]{background:#9ed9b6}.note{margin-top:12px;min-height:1.5em}
ol.keys{padding-left:1.5em}ol.keys li{margin:8px 0}code{font:15px/1.4 ui-monospace,Menlo,Consolas,monospace;
word-break:break-all;background:#f6f6f6;padding:4px 6px;border-radius:4px;user-select:all}
.qr svg{width:220px;height:220px;display:block;margin:12px auto}a{color:#576b95}
"""


@dataclass(frozen=True)
class Page:
    """A rendered page: its HTML and the nonce its script runs under (for the CSP header)."""

    html: str
    nonce: str


def _page(lang: str, title: str, body: str, script: str = "") -> Page:
    nonce = secrets.token_urlsafe(16)
    tag = f'<script nonce="{nonce}">{script}</script>' if script else ""
    doc = (
        f'<!doctype html><html lang="{"zh-CN" if lang.startswith("zh") else "en"}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="referrer" content="no-referrer"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><main>{body}</main>{tag}</body></html>"
    )
    return Page(doc, nonce)


def _e(value: object) -> str:
    return html.escape(str(value))


def _name(order: OrderView) -> str:
    """A product's name, escaped and isolated (``<bdi>``): a right-to-left mark in a name an admin typed
    or pasted must not turn the quantity after it round."""
    return f"<bdi>{_e(order.name)}</bdi>"


@dataclass(frozen=True)
class OrderView:
    """What a page shows of an order (amount already formatted in the buyer's language)."""

    ref: str
    name: str
    quantity: int
    amount: str


def pay_page(
    texts: Texts, lang: str, order: OrderView, minutes: int, params: dict[str, str], done: str
) -> Page:
    """The JSAPI pay page: the order, its amount and the pay button, which calls WeixinJSBridge's
    ``getBrandWCPayRequest`` with ``params`` (signed by the shop). ``done``: the order page's URL, where
    the buyer goes once WeChat says paid."""
    t = texts.tr
    body = (
        f'<div class="card"><h1>{_e(t(lang, "wx-page-pay-title"))}</h1>'
        f"<div>{_name(order)} × {order.quantity}</div>"
        f'<div class="amount" id="amount">{_e(order.amount)}</div>'
        f'<div class="muted">{_e(t(lang, "wx-page-order", ref=order.ref))}</div>'
        f'<div class="muted">{_e(t(lang, "wx-page-held", minutes=minutes))}</div></div>'
        f'<button id="pay" type="button">{_e(t(lang, "wx-page-pay-button"))}</button>'
        '<div class="note" id="note" role="status"></div>'
    )
    words = {
        "ok": t(lang, "wx-page-paid"),
        "cancel": t(lang, "wx-page-pay-cancelled"),
        "fail": t(lang, "wx-page-pay-failed"),
        "bridge": t(lang, "wx-page-open-in-wechat"),
    }
    script = (
        f"var P={_json(params)},W={_json(words)},D={_json(done)};"
        "var b=document.getElementById('pay'),n=document.getElementById('note');"
        "function pay(){b.disabled=true;n.textContent='';"
        "WeixinJSBridge.invoke('getBrandWCPayRequest',P,function(r){"
        "var m=(r&&r.err_msg)||'';"
        "if(m==='get_brand_wcpay_request:ok'){n.textContent=W.ok;setTimeout(function(){location.href=D},1500);}"
        "else{b.disabled=false;n.textContent=m==='get_brand_wcpay_request:cancel'?W.cancel:W.fail;}});}"
        "function ready(){b.onclick=pay;}"
        "if(typeof WeixinJSBridge==='object'&&typeof WeixinJSBridge.invoke==='function'){ready();}"
        "else{n.textContent=W.bridge;document.addEventListener('WeixinJSBridgeReady',function(){"
        "n.textContent='';ready();},false);}"
    )
    return _page(lang, t(lang, "wx-page-pay-title"), body, script)


def native_page(texts: Texts, lang: str, order: OrderView, minutes: int, qr_svg: str) -> Page:
    """A desktop browser's page: the Native QR to scan with WeChat on a phone (``qr_svg`` is ours)."""
    t = texts.tr
    body = (
        f'<div class="card"><h1>{_e(t(lang, "wx-page-pay-title"))}</h1>'
        f"<div>{_name(order)} × {order.quantity}</div>"
        f'<div class="amount">{_e(order.amount)}</div>'
        f'<div class="qr" id="qr">{qr_svg}</div>'
        f"<div>{_e(t(lang, 'wx-page-scan'))}</div>"
        f'<div class="muted">{_e(t(lang, "wx-page-order", ref=order.ref))}</div>'
        f'<div class="muted">{_e(t(lang, "wx-page-held", minutes=minutes))}</div></div>'
    )
    return _page(lang, t(lang, "wx-page-pay-title"), body)


def desktop_page(texts: Texts, lang: str, order: OrderView, minutes: int, qr_link: str) -> Page:
    """A browser outside WeChat opening the pay link: the order, and a link to ask for its Native QR
    (``qr_link``). The QR is made only when asked for: WeChat Pay keeps one trade per order, and a QR made
    for whatever fetched the link first (a link checker, a previewer) would leave the buyer's phone unable
    to pay it in WeChat."""
    t = texts.tr
    body = (
        f'<div class="card"><h1>{_e(t(lang, "wx-page-pay-title"))}</h1>'
        f"<div>{_name(order)} × {order.quantity}</div>"
        f'<div class="amount">{_e(order.amount)}</div>'
        f'<div id="message">{_e(t(lang, "wx-page-desktop"))}</div>'
        f'<p><a id="show-qr" href="{_e(qr_link)}">{_e(t(lang, "wx-page-show-qr"))}</a></p>'
        f'<div class="muted">{_e(t(lang, "wx-page-order", ref=order.ref))}</div>'
        f'<div class="muted">{_e(t(lang, "wx-page-held", minutes=minutes))}</div></div>'
    )
    return _page(lang, t(lang, "wx-page-pay-title"), body)


def message_page(
    texts: Texts, lang: str, key: str, link: tuple[str, str] | None = None, **params: object
) -> Page:
    """A page that only says something (paid already, expired, not yours…), with an optional link
    ``(url, text key)``."""
    t = texts.tr
    more = f'<p><a id="next" href="{_e(link[0])}">{_e(t(lang, link[1]))}</a></p>' if link else ""
    text = t(lang, key, **params)
    body = f'<div class="card"><p id="message">{_e(text)}</p>{more}</div>'
    return _page(lang, t(lang, "wx-page-shop"), body)


def keys_page(texts: Texts, lang: str, order: OrderView, keys: Sequence[str]) -> Page:
    """The order page: the keys of a delivered order, each selectable as a whole."""
    t = texts.tr
    items = "".join(f"<li><code>{_e(k)}</code></li>" for k in keys)
    body = (
        f'<div class="card"><h1>{_e(t(lang, "wx-page-keys-title"))}</h1>'
        f"<div>{_name(order)} × {order.quantity}</div>"
        f'<div class="muted">{_e(t(lang, "wx-page-order", ref=order.ref))}</div>'
        f'<ol class="keys" id="keys">{items}</ol>'
        f'<div class="muted">{_e(t(lang, "wx-page-keys-secret"))}</div></div>'
    )
    return _page(lang, t(lang, "wx-page-keys-title"), body)


def _json(value: object) -> str:
    """JSON safe inside a <script> element: no "</script>", no HTML comment, no line separators."""
    return (
        json.dumps(value, ensure_ascii=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
