"""The buyer's WeChat pages (under the callback path): ``/pay/<ref>`` pays an order with WeChat Pay,
``/order/<ref>`` shows a delivered order's keys.

Inside WeChat the buyer is identified by OAuth ``snsapi_base`` (silent: a redirect to WeChat and back with
a ``code`` the shop turns into the openid), kept in a signed cookie (``session``); a page shows an order
only to the WeChat user who placed it. The pay page asks WeChat Pay for a JSAPI prepay (out_trade_no = the
order reference, time_expire = the end of its reservation) and hands the signed parameters to
``WeixinJSBridge``; a browser outside WeChat (a desktop) gets the order and a link (``?qr=1``) to a Native
QR to scan with a phone instead, as WeChat Pay's Native codes cannot be paid from the phone showing them
(made only when asked for: WeChat Pay keeps one trade per order). Keys are shown only inside WeChat,
to their buyer, each time audited as a reveal.

Every page is a GET that changes nothing but the record of an order opened at WeChat Pay; answers are
never cached (``no-store``) and carry a Content-Security-Policy that allows only their own inline style
and script."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

import segno
from aiohttp import web

from core.errors import ShopError
from core.models import Order, OrderStatus, User
from core.services import Services
from handlers.money import format_amount
from handlers.wechat.paid import Merchant, take_transaction
from handlers.wechat.pay import OrderPaid, OutTradeNoUsed
from handlers.wechat.texts import DEFAULT_LANGUAGE, Texts, fit
from handlers.wechat.web.pages import OrderView, desktop_page, keys_page, message_page, native_page, pay_page
from handlers.wechat.web.responses import html, no_store_header, redirect
from handlers.wechat.web.session import COOKIE, SESSION_TTL, STATE_COOKIE, STATE_TTL, Sessions

log = logging.getLogger(__name__)

CHANNEL = "wechat"
_REF = re.compile(r"[A-Z2-7]{16}")  # core.services.checkout.new_order_ref
DESCRIPTION_MAX = 127  # WeChat Pay's ``description``: string(127)


class PrepayClient(Protocol):
    """What the pages need of the WeChat Pay client (``handlers.wechat.pay.WechatPay``)."""

    async def jsapi_prepay(
        self,
        *,
        out_trade_no: str,
        description: str,
        total: int,
        openid: str,
        time_expire: datetime,
        attach: str | None = None,
    ) -> str: ...

    async def native_prepay(
        self, *, out_trade_no: str, description: str, total: int, time_expire: datetime
    ) -> str: ...

    def jsapi_params(self, prepay_id: str) -> dict[str, str]: ...

    async def query(self, out_trade_no: str) -> Any: ...


class OpenidSource(Protocol):
    """What the pages need of the official account's API (``handlers.wechat.api.WechatApi``)."""

    async def openid_from_code(self, code: str) -> str: ...


@dataclass(frozen=True)
class PagesConfig:
    app_id: str
    public_url: str  # WECHAT_PUBLIC_URL: https://… as the buyer's phone reaches the shop
    base_path: str = "/wechat"  # WECHAT_CALLBACK_PATH; the pages are under it
    oauth_url: str = "https://open.weixin.qq.com"  # WECHAT_OAUTH_URL (the emulator in tests)

    @property
    def secure(self) -> bool:
        return self.public_url.startswith("https://")


class WechatPages:
    def __init__(
        self,
        services: Services,
        texts: Texts,
        config: PagesConfig,
        sessions: Sessions,
        oauth: OpenidSource,
        pay: PrepayClient | None,
        merchant: Merchant | None = None,
    ) -> None:
        self.services, self.texts, self.config = services, texts, config
        self.sessions, self.oauth, self.pay = sessions, oauth, pay
        self.merchant = merchant

    # ------------------------------------------------------------------ the pay page

    async def pay_page(self, request: web.Request) -> web.StreamResponse:
        """Receives: the buyer opening the pay link of an order (``/pay/<ref>``)."""
        ref = request.match_info.get("ref", "")
        if not _REF.fullmatch(ref):
            return self._message(DEFAULT_LANGUAGE, "wx-page-not-found", status=404)
        if self.pay is None:
            return self._message(DEFAULT_LANGUAGE, "wx-page-pay-off", status=503)
        if not _in_wechat(request):
            return await self._native(ref, asked=request.query.get("qr") == "1")
        who = await self._who(request)
        if isinstance(who, web.StreamResponse):
            return who
        openid, user = who
        lang = _lang(user)
        order = await self._order_of(ref, user)
        if order is None:
            return self._message(lang, "wx-page-not-yours", status=404)
        if order.status is not OrderStatus.PENDING:
            return self._settled(lang, order)
        now = self.services.ctx.clock.now()
        if order.expires_at <= now:
            return self._message(lang, "wx-page-expired", status=410)
        view = await self._view(order, lang)
        first = await self.services.wechat_pay.opened(order.ref, "JSAPI")
        if first != "JSAPI":  # opened as a Native QR on a desktop: WeChat Pay keeps one trade per order
            return self._message(lang, "wx-page-pay-elsewhere", status=409)
        try:
            prepay_id = await self.pay.jsapi_prepay(
                out_trade_no=order.ref,
                description=_description(view),
                total=order.amount,
                openid=openid,
                time_expire=order.expires_at,
            )
        except OrderPaid:
            return await self._paid_meanwhile(lang, order)
        except OutTradeNoUsed as e:  # opened before with what has changed since (the product's name)
            return await self._cannot_pay(lang, order, user, e)
        except Exception as e:  # WeChat Pay refused or is away: the buyer is told, the admins see the log
            log.warning("wechat pay: prepay for order %s failed: %s", order.ref, _why(e))
            return self._message(lang, "wx-page-pay-unavailable", status=502)
        params = self.pay.jsapi_params(prepay_id)
        page = pay_page(self.texts, lang, view, _minutes(order, now), params, self._url("order", order.ref))
        return html(page)

    async def _native(self, ref: str, *, asked: bool) -> web.StreamResponse:
        """A browser outside WeChat: the order's Native QR, to scan with WeChat on a phone, once ``asked``
        for (``?qr=1``) or made before; until then the order and the link to ask for it (see
        ``desktop_page``). The link is the order's unguessable reference; the page shows what is to be
        paid, never keys."""
        assert self.pay is not None
        lang = DEFAULT_LANGUAGE
        order = await self._order_of(ref, None)
        if order is None:
            return self._message(lang, "wx-page-not-found", status=404)
        buyer = await self.services.users.get(order.user_id)
        if buyer.channel != CHANNEL:
            return self._message(lang, "wx-page-not-found", status=404)
        lang = _lang(buyer)
        if order.status is not OrderStatus.PENDING:
            return self._message(lang, "wx-page-open-in-wechat-keys")
        now = self.services.ctx.clock.now()
        if order.expires_at <= now:
            return self._message(lang, "wx-page-expired", status=410)
        view = await self._view(order, lang)
        if not asked and await self.services.wechat_pay.trade_type(order.ref) is None:
            link = self._url("pay", order.ref) + "?qr=1"
            return html(desktop_page(self.texts, lang, view, _minutes(order, now), link))
        if await self.services.wechat_pay.opened(order.ref, "NATIVE") != "NATIVE":
            # opened in WeChat (JSAPI) first: WeChat Pay keeps that one trade, which only WeChat can pay
            return self._message(lang, "wx-page-open-in-wechat", status=409)
        try:
            code_url = await self.pay.native_prepay(
                out_trade_no=order.ref,
                description=_description(view),
                total=order.amount,
                time_expire=order.expires_at,
            )
        except OrderPaid:  # scanned and paid, its notify not here yet: taken now, the keys are in WeChat
            await self._take_paid(order)
            return self._message(lang, "wx-page-open-in-wechat-keys")
        except Exception as e:
            log.warning("wechat pay: native prepay for order %s failed: %s", order.ref, _why(e))
            return self._message(lang, "wx-page-pay-unavailable", status=502)
        svg = segno.make(code_url, error="m").svg_inline(scale=4, omitsize=True)
        return html(native_page(self.texts, lang, view, _minutes(order, now), svg))

    async def _paid_meanwhile(self, lang: str, order: Order) -> web.StreamResponse:
        """WeChat Pay says the order is paid while the shop still has it pending (its notify was lost or is
        on its way): what WeChat Pay says is taken now, as the reconciliation would, and the buyer told."""
        current = await self._take_paid(order)
        return self._settled(
            lang,
            current if current is not None and current.status is not OrderStatus.PENDING else _as_paid(order),
        )

    async def _cannot_pay(self, lang: str, order: Order, user: User, e: Exception) -> web.StreamResponse:
        """WeChat Pay will never take this order as it is now (OUT_TRADE_NO_USED: placed before with a
        description that has changed since). It is cancelled, its keys back on sale, so that ordering again
        in the chat makes a new one rather than reusing it; the buyer is told so."""
        log.warning("wechat pay: order %s can no longer be placed: %s; cancelled", order.ref, _why(e))
        try:
            await self.services.orders.cancel(order.ref, user_id=user.id, actor="wechat:pay page")
        except ShopError as refused:  # paid or expired meanwhile: say what it is now
            log.info("wechat pay: order %s not cancelled: %s", order.ref, refused.key)
            current = await self._order_of(order.ref, None)
            if current is not None and current.status is not OrderStatus.PENDING:
                return self._settled(lang, current)
        return self._message(lang, "wx-page-pay-changed", status=409)

    async def _take_paid(self, order: Order) -> Order | None:
        """Ask WeChat Pay about an order it says is paid and take the payment; the order as it is now."""
        try:
            tx = await self.pay.query(order.ref) if self.pay is not None else None
            if tx is not None and self.merchant is not None:
                await take_transaction(self.services, tx, self.merchant)
        except Exception as e:  # the notify or the reconciliation will take it
            log.warning("wechat pay: order %s paid, but taking it failed: %s", order.ref, _why(e))
        return await self._order_of(order.ref, None)

    # ------------------------------------------------------------------ the order page

    async def order_page(self, request: web.Request) -> web.StreamResponse:
        """Receives: the buyer opening an order's page (``/order/<ref>``): its keys once delivered."""
        ref = request.match_info.get("ref", "")
        if not _REF.fullmatch(ref):
            return self._message(DEFAULT_LANGUAGE, "wx-page-not-found", status=404)
        if not _in_wechat(request):  # in the buyer's language, as the QR page of the same link is
            return self._message(await self._buyers_language(ref), "wx-page-open-in-wechat-keys", status=403)
        who = await self._who(request)
        if isinstance(who, web.StreamResponse):
            return who
        openid, user = who
        lang = _lang(user)
        order = await self._order_of(ref, user)
        if order is None:
            return self._message(lang, "wx-page-not-yours", status=404)
        if order.status is OrderStatus.PENDING:
            return self._message(lang, "wx-page-unpaid", link=(self._url("pay", ref), "wx-page-pay-button"))
        if order.status is OrderStatus.PAID:  # an admin delivers it by hand: nothing to show yet
            return self._message(lang, "wx-page-awaiting-manual")
        if order.status is not OrderStatus.DELIVERED:
            return self._settled(lang, order)
        try:
            revealed = await self.services.orders.reveal(
                ref, user_id=user.id, actor=f"wechat:{openid}", reason="wechat order page"
            )
        except ShopError as e:
            log.info("wechat order page %s: %s", ref, type(e).__name__)
            return self._message(lang, "wx-page-keys-unavailable", status=409)
        view = await self._view(order, lang)
        return html(keys_page(self.texts, lang, view, revealed.keys))

    # ------------------------------------------------------------------ who is looking

    async def _who(self, request: web.Request) -> tuple[str, User] | web.StreamResponse:
        """The buyer looking at this page (openid and user row), or the response that gets to know them:
        a redirect through WeChat's OAuth, or the page again with the session cookie set."""
        openid = self.sessions.openid(request.cookies.get(COOKIE))
        if openid is None:
            code, state = request.query.get("code", ""), request.query.get("state", "")
            browser = request.cookies.get(STATE_COOKIE)
            if code and self.sessions.check_state(state, request.path, browser):
                try:
                    openid = await self.oauth.openid_from_code(code[:128])
                except Exception as e:
                    log.warning("wechat page %s: OAuth code refused: %s", request.path, _why(e))
                    return self._message(DEFAULT_LANGUAGE, "wx-page-login-failed", status=502)
                back = redirect(self.config.public_url + request.path)
                back.set_cookie(
                    COOKIE,
                    self.sessions.cookie(openid),
                    max_age=SESSION_TTL,
                    path=self.config.base_path,
                    httponly=True,
                    secure=self.config.secure,
                    samesite="Lax",
                )
                back.del_cookie(STATE_COOKIE, path=self.config.base_path)
                return back
            return self._to_oauth(request.path)
        user = await self.services.users.find(CHANNEL, openid)
        if user is None:  # a WeChat user the shop never heard from has no order to see
            return self._message(DEFAULT_LANGUAGE, "wx-page-not-yours", status=404)
        return openid, user

    def _to_oauth(self, path: str) -> web.StreamResponse:
        """To WeChat's OAuth and back to ``path``, with a ``state`` this browser alone can bring back (its
        nonce in a cookie: see ``session``)."""
        c = self.config
        state = self.sessions.state(path)
        url = (
            f"{c.oauth_url}/connect/oauth2/authorize?appid={c.app_id}"
            f"&redirect_uri={quote(c.public_url + path, safe='')}&response_type=code&scope=snsapi_base"
            f"&state={state}#wechat_redirect"
        )
        response = redirect(url)
        response.set_cookie(
            STATE_COOKIE,
            self.sessions.state_nonce(state),
            max_age=STATE_TTL,
            path=c.base_path,
            httponly=True,
            secure=c.secure,
            samesite="Lax",  # sent on WeChat's redirect back (a top-level GET)
        )
        return response

    # ------------------------------------------------------------------ helpers

    async def _order_of(self, ref: str, user: User | None) -> Order | None:
        try:
            return await self.services.orders.get(ref, user_id=user.id if user is not None else None)
        except ShopError:
            return None

    async def _buyers_language(self, ref: str) -> str:
        order = await self._order_of(ref, None)
        if order is None:
            return DEFAULT_LANGUAGE
        buyer = await self.services.users.get(order.user_id)
        return _lang(buyer) if buyer.channel == CHANNEL else DEFAULT_LANGUAGE

    async def _view(self, order: Order, lang: str) -> OrderView:
        product = await self.services.catalog.product(order.product_id)
        amount = format_amount(order.amount, order.currency, lang)
        return OrderView(order.ref, product.name, order.quantity, amount)

    def _settled(self, lang: str, order: Order) -> web.StreamResponse:
        if order.status in (OrderStatus.PAID, OrderStatus.DELIVERED):
            return self._message(
                lang, "wx-page-already-paid", link=(self._url("order", order.ref), "wx-page-see-keys")
            )
        if order.status is OrderStatus.REFUNDED:
            return self._message(lang, "wx-page-refunded")
        if order.status is OrderStatus.REFUND_DUE:  # a payment the shop could not keep, on its way back
            return self._message(lang, "wx-page-refund-due")
        return self._message(lang, "wx-page-expired", status=410)

    def _message(
        self, lang: str, key: str, *, status: int = 200, link: tuple[str, str] | None = None
    ) -> web.StreamResponse:
        return html(message_page(self.texts, lang, key, link), status=status)

    def _url(self, kind: str, ref: str) -> str:
        """The page's URL as the routes have it (``add_page_routes``: a callback path of /wechat/ too)."""
        return f"{self.config.public_url}{self.config.base_path.rstrip('/')}/{kind}/{ref}"


def _as_paid(order: Order) -> Order:
    """The order as the buyer should see it when WeChat Pay has their money (the shop will soon agree)."""
    return replace(order, status=OrderStatus.PAID)


def _in_wechat(request: web.Request) -> bool:
    """WeChat's in-app browser (phone or desktop client), where OAuth and WeixinJSBridge exist."""
    return "MicroMessenger" in request.headers.get("User-Agent", "")


def _lang(user: User) -> str:
    return user.language or DEFAULT_LANGUAGE


def _minutes(order: Order, now: datetime) -> int:
    return max(1, int((order.expires_at - now).total_seconds() // 60))


def _description(view: OrderView) -> str:
    """WeChat Pay's ``description`` (shown in the buyer's bill): the product and quantity, cut to 127 UTF-8
    bytes (string(127): whether WeChat Pay counts characters or bytes is not settled; bytes fit both)."""
    return fit(f"{view.name} × {view.quantity}", DESCRIPTION_MAX)


def _why(e: Exception) -> str:
    return f"{type(e).__name__}: {str(e)[:200]}"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_page_routes(app: web.Application, pages: WechatPages) -> None:
    """The pages on ``app``: GET only (a HEAD, which a link checker sends, would open the order at WeChat
    Pay as a GET does: 405), and nothing under them cached, the router's own 404 and 405 included."""
    base = pages.config.base_path.rstrip("/")
    app.router.add_get(base + "/pay/{ref}", pages.pay_page, allow_head=False)
    app.router.add_get(base + "/order/{ref}", pages.order_page, allow_head=False)
    prefixes = (base + "/pay/", base + "/order/")

    async def no_store(request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith(prefixes):
            no_store_header(response)

    app.on_response_prepare.append(no_store)


__all__: list[Any] = ["PagesConfig", "WechatPages", "add_page_routes"]
