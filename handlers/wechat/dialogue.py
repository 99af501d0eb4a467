"""The buyer's text dialogue in the official account: commands in Chinese or English, numbered lists where
a number chooses, menu taps (CLICK keys ``catalog``/``orders``/``invite``) and the welcome on follow.

Thin: each answer is one or two core calls rendered through ``Texts``. ``answer`` takes a parsed push
(wechatpy's message or event) and returns the reply text, or None for pushes that get no reply (an
unfollow, a menu VIEW). Routing is on the command words, which are the interface (like Telegram's
``/catalog``), never on translated text shown by the shop.

The numbered list a buyer saw last is kept per openid in memory for ``CHOICE_TTL`` (``Choices``): it is
only a convenience, lost on restart, and when the number arrives at another instance (several behind one
URL) it is read against the catalog's current order, which is the order the list was shown in; the card
always names the product, so the buyer sees what they chose before buying."""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from core.errors import ShopError
from core.models import DeliveryKind, Order, Product, User, UserIdentity
from core.services import Services
from handlers.money import format_amount
from handlers.wechat.api import WechatApi
from handlers.wechat.errors import WechatApiError
from handlers.wechat.texts import DEFAULT_LANGUAGE, TEXT_MAX_BYTES, Texts, fit, fit_lines

log = logging.getLogger(__name__)

CHANNEL = "wechat"
CHOICE_TTL = 30 * 60.0  # seconds a numbered list stays answerable by its numbers
MAX_LISTED = 30  # products in one list, fewer when their lines pass TEXT_MAX_BYTES (fit_lines)
ORDERS_SHOWN = 10

# Command words (lower-cased, stripped). The Chinese ones are the menu's words.
COMMANDS = {
    "商品": "catalog",
    "catalog": "catalog",
    "订单": "orders",
    "我的订单": "orders",
    "orders": "orders",
    "帮助": "help",
    "help": "help",
    "推广": "invite",
    "invite": "invite",
    "english": "english",
    "中文": "chinese",
}
# The custom menu `keyshop wechat menu` creates: a CLICK button per command, named by the command's Chinese
# word (a menu has one language for every follower; the buyer's language only changes the answers).
MENU_BUTTONS = (("商品", "catalog"), ("我的订单", "orders"), ("推广", "invite"))
MENU_KEYS = frozenset(key for _, key in MENU_BUTTONS)  # the CLICK EventKeys the dialogue answers
_NUMBER_RE = re.compile(r"\d{1,4}")
_BUY_RE = re.compile(r"(?:买|buy)\s*(\d{1,4})", re.IGNORECASE)


def custom_menu() -> dict[str, Any]:
    """The body of ``menu/create`` for the shop's menu (商品 / 我的订单 / 推广)."""
    return {"button": [{"type": "click", "name": name, "key": key} for name, key in MENU_BUTTONS]}


class Choices:
    """The last numbered list shown to each openid (product ids in the order shown), kept ``ttl`` seconds.
    Bounded: the least recently shown lists go first beyond ``limit`` buyers."""

    def __init__(
        self, ttl: float = CHOICE_TTL, limit: int = 10_000, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl, self._limit, self._now = ttl, limit, now
        self._lists: OrderedDict[str, tuple[float, tuple[int, ...]]] = OrderedDict()

    def remember(self, openid: str, ids: tuple[int, ...]) -> None:
        self._lists.pop(openid, None)
        self._lists[openid] = (self._now() + self._ttl, ids)
        while len(self._lists) > self._limit:
            self._lists.popitem(last=False)

    def recall(self, openid: str) -> tuple[int, ...] | None:
        found = self._lists.get(openid)
        if found is None:
            return None
        if found[0] < self._now():
            del self._lists[openid]
            return None
        return found[1]


REFERRAL_SCENE = "ref"  # a distributor's permanent QR code: scene_str "ref:<their referral code>"


class PayPages:
    """Where the shop's WeChat pages are, as the buyer's phone reaches them: ``public_url``
    (WECHAT_PUBLIC_URL, https://…) + the callback path + ``/pay/<ref>`` (pay) or ``/order/<ref>`` (keys)."""

    def __init__(self, public_url: str, base_path: str) -> None:
        self.base = public_url.rstrip("/") + base_path.rstrip("/")

    def pay_url(self, ref: str) -> str:
        return f"{self.base}/pay/{ref}"

    def order_url(self, ref: str) -> str:
        return f"{self.base}/order/{ref}"


class Dialogue:
    def __init__(
        self,
        services: Services,
        texts: Texts,
        choices: Choices | None = None,
        api: WechatApi | None = None,
        pages: PayPages | None = None,
    ) -> None:
        """``api``: the official account's API, for each distributor's permanent QR code (without it, or
        while it fails, ``推广`` answers with the referral code alone). ``pages`` None: WeChat Pay is not
        configured, so a quantity gets its total but no order."""
        self.services, self.texts = services, texts
        self.choices = choices or Choices()
        self.api = api
        self.pages = pages

    async def answer(self, msg: Any) -> str | None:
        """The reply to one push (wechatpy's parsed message or event), or None for no reply."""
        openid = str(msg.source)
        if msg.type == "event":
            scene = str(getattr(msg, "scene_id", "") or "")
            if scene:  # a parametric QR code: a distributor's (``ref:<code>``) attributes a newcomer
                await self._arrived(openid, scene)
            return await self._event(openid, str(msg.event), str(getattr(msg, "key", "") or ""))
        user = await self.services.users.ensure(CHANNEL, openid, language=DEFAULT_LANGUAGE)
        if msg.type != "text":  # a picture, a voice, a location…: what we understand is text
            return self._help(user)
        return await self._text(user, str(msg.content or "").strip())

    async def _arrived(self, openid: str, scene: str) -> None:
        """Someone followed or scanned through a QR code with ``scene``: a distributor's (``ref:<code>``,
        the same code as their Telegram link) counts the open and attributes them if they are new to the
        shop, exactly as a Telegram invite link does (first touch only: someone the shop already knows
        keeps their referrer, or none). Any other scene is not ours to read."""
        kind, _, code = scene.partition(":")
        if kind != REFERRAL_SCENE or not code:
            return
        found = await self.services.users.find(CHANNEL, openid)
        who = found or UserIdentity(CHANNEL, openid, language=DEFAULT_LANGUAGE)
        await self.services.referrals.arrive(who, code)

    async def _event(self, openid: str, event: str, key: str) -> str | None:
        if event in ("subscribe", "subscribe_scan"):
            user = await self.services.users.ensure(CHANNEL, openid, language=DEFAULT_LANGUAGE)
            return self._tr(user, "wx-welcome") + "\n\n" + self._help(user)
        if event == "click" and key in MENU_KEYS:
            user = await self.services.users.ensure(CHANNEL, openid, language=DEFAULT_LANGUAGE)
            return await self._command(user, key)
        if event == "scan":  # a follower scanned a QR code: the shop's greeting, never silence
            user = await self.services.users.ensure(CHANNEL, openid, language=DEFAULT_LANGUAGE)
            return self._help(user)
        return None  # unsubscribe, VIEW, location reports…: WeChat shows nothing for them

    async def _text(self, user: User, text: str) -> str:
        word = text.lower()
        if word in COMMANDS:
            return await self._command(user, COMMANDS[word])
        if _NUMBER_RE.fullmatch(word):
            return await self._choose(user, int(word))
        buy = _BUY_RE.fullmatch(word)
        if buy:
            return await self._quantity(user, int(buy.group(1)))
        return self._help(user)

    async def _command(self, user: User, command: str) -> str:
        if command == "catalog":
            return await self._catalog(user)
        if command == "orders":
            return await self._orders(user)
        if command == "invite":
            code = (await self.services.referrals.invite(user.id)).code
            qr = await self._referral_qr(code)
            if qr is None:
                return self._tr(user, "wx-invite", code=code)
            return self._tr(user, "wx-invite-qr", code=code, url=qr)
        if command in ("english", "chinese"):
            language = "en" if command == "english" else "zh_CN"
            await self.services.users.set_language(user.id, language)
            user = await self.services.users.get(user.id)
            return self._tr(user, "wx-language-set") + "\n\n" + self._help(user)
        return self._help(user)

    async def _referral_qr(self, code: str) -> str | None:
        """The link of the permanent QR code for referral ``code`` (scene ``ref:<code>``), made the first
        time and kept; None without the API or while WeChat refuses (logged: the code alone still works)."""
        if self.api is None:
            return None
        scene = f"{REFERRAL_SCENE}:{code}"
        try:
            url = await self.services.wechat_qr_codes.permanent_url(
                self.api.app_id, scene, self.api.permanent_qr
            )
        except WechatApiError as e:
            log.warning("no permanent QR code for %s: %s", scene, e)
            return None
        if url is None:
            log.warning("no permanent QR code for %s yet: another instance is still making it", scene)
        return url

    async def _catalog(self, user: User) -> str:
        shelf = await self._shelf()
        if not shelf:
            return self._tr(user, "wx-catalog-empty")
        title, hint = self._tr(user, "wx-catalog-title"), self._tr(user, "wx-catalog-hint")
        lines = fit_lines(
            title,
            [
                self._tr(user, "wx-catalog-line", n=i, name=p.name, price=self._price(user, p.price))
                for i, (p, _) in enumerate(shelf, 1)
            ],
            hint,
        )
        # only what was shown is answerable: a number past the cut must not open an unseen product
        self.choices.remember(str(user.external_id), tuple(p.id for p, _ in shelf[: len(lines)]))
        return "\n".join([title, *lines, hint])

    async def _shelf(self) -> list[tuple[Product, int]]:
        """Products on sale in a stable order (the order a number is read against)."""
        shelf = sorted(await self.services.catalog.shelf(), key=lambda pn: (pn[0].name.lower(), pn[0].id))
        return shelf[:MAX_LISTED]

    async def _choose(self, user: User, n: int) -> str:
        ids = self.choices.recall(str(user.external_id))
        if ids is None:
            ids = tuple(p.id for p, _ in await self._shelf())
        if not 1 <= n <= len(ids):
            return self._tr(user, "wx-choice-unknown", n=n) + "\n\n" + await self._catalog(user)
        product, count = await self.services.catalog.card(ids[n - 1])
        available = _sellable(product, count)
        if not product.active:
            return self._tr(user, "wx-product-gone", name=product.name) + "\n\n" + await self._catalog(user)
        if available <= 0:
            tail = self._tr(user, "wx-out-of-stock")
        else:
            self.choices.remember(_card_of(user), (product.id,))
            tail = self._tr(user, "wx-buy-hint", min=product.min_qty, max=min(product.max_qty, available))
        stock = (
            count if product.delivery_kind is DeliveryKind.UNIQUE else self._tr(user, "wx-stock-available")
        )
        fields = {"name": product.name, "price": self._price(user, product.price), "stock": stock}
        bare = self._tr(user, "wx-product-card", description="", **fields) + "\n" + tail
        # a long description is cut, never the price or how to buy: the card must fit one reply
        description = fit(product.description or "—", TEXT_MAX_BYTES - len(bare.encode()))
        return self._tr(user, "wx-product-card", description=description, **fields) + "\n" + tail

    async def _quantity(self, user: User, qty: int) -> str:
        """``买 N`` after a card: the quantity checked against the product's bounds and stock, then the
        order through the same checkout as Telegram's (limits, reservation, an unpaid twin reused) and the
        link to pay it with WeChat Pay. Without WeChat Pay the reply gives the total and says so."""
        shown = self.choices.recall(_card_of(user))
        if shown is None:
            return self._tr(user, "wx-buy-pick-first") + "\n\n" + await self._catalog(user)
        product, count = await self.services.catalog.card(shown[0])
        available = _sellable(product, count)
        if not product.active:
            return self._tr(user, "wx-product-gone", name=product.name) + "\n\n" + await self._catalog(user)
        # None left on sale may still be the buyer's own unpaid order of the last keys, asked for again:
        # the checkout reuses it (or says the stock is out)
        most = min(product.max_qty, available) if available > 0 else product.max_qty
        if not product.min_qty <= qty <= most:
            return self._tr(user, "wx-quantity-range", min=product.min_qty, max=most)
        total = self._price(user, product.price * qty)
        if self.pages is None:
            if available <= 0:
                return self._tr(user, "wx-out-of-stock")
            return self._tr(user, "wx-quantity-ok", name=product.name, qty=qty, total=total)
        try:
            order = await self._checkout(user, product.id, qty)
        except ShopError as e:
            return self._refusal(user, e)
        minutes = max(1, int((order.expires_at - self.services.ctx.clock.now()).total_seconds() // 60))
        return self._tr(
            user,
            "wx-order-created",
            ref=order.ref,
            name=product.name,
            qty=order.quantity,
            total=self._amount(user, order.amount, order.currency),
            minutes=minutes,
            link=self.pages.pay_url(order.ref),
        )

    async def _checkout(self, user: User, product_id: int, qty: int) -> Order:
        """The order to pay: the buyer's unpaid twin when there is one, unless it was opened at WeChat Pay
        as a Native QR (a desktop browser had the link), which the phone cannot pay: WeChat Pay keeps one
        trade type per order, so that one is cancelled (its keys back on sale) and a new one made."""
        currency = self.services.ctx.config.currency
        done = await self.services.checkout.checkout_or_reuse(user.id, product_id, qty, currency)
        if done.created or await self.services.wechat_pay.trade_type(done.order.ref) != "NATIVE":
            return done.order
        try:
            await self.services.orders.cancel(
                done.order.ref, user_id=user.id, actor=f"wechat:{user.external_id}"
            )
        except ShopError as e:  # paid meanwhile: the new order is what the buyer asks for now
            log.info("wechat: order %s not cancelled for a new one: %s", done.order.ref, e.key)
        again = await self.services.checkout.checkout_or_reuse(user.id, product_id, qty, currency)
        return again.order

    def _refusal(self, user: User, e: ShopError) -> str:
        """A refused checkout in the buyer's language (the shop's own words for it, as Telegram shows)."""
        params = dict(e.params)
        status = params.get("status")
        if status:
            params["status"] = self._tr(user, f"status-{status}")
        return self._tr(user, e.key, **params)

    async def _orders(self, user: User) -> str:
        history = await self.services.orders.history(user.id, limit=ORDERS_SHOWN)
        if not history:
            return self._tr(user, "wx-orders-empty")
        title = self._tr(user, "wx-orders-title")
        lines = [
            self._tr(
                user,
                "wx-order-line",
                ref=line.order.ref,
                name=line.product_name,
                qty=line.order.quantity,
                amount=self._amount(user, line.order.amount, line.order.currency),
                status=self._tr(user, f"status-{line.order.status.value}"),
            )
            for line in history
        ]
        return "\n".join([title, *fit_lines(title, lines, "")])

    def _help(self, user: User) -> str:
        return self._tr(user, "wx-help")

    def _price(self, user: User, minor: int) -> str:
        return self._amount(user, minor, self.services.ctx.config.currency)

    def _amount(self, user: User, minor: int, currency: str) -> str:
        return format_amount(minor, currency, user.language or DEFAULT_LANGUAGE)

    def _tr(self, user: User, key: str, /, **params: Any) -> str:
        return self.texts.tr(user.language, key, **params)


def _sellable(product: Product, unique_keys: int) -> int:
    """How many a buyer may ask for now: the unique keys in stock; a shared key or a product an admin
    delivers by hand is never out of stock (the product's own maximum bounds it)."""
    return unique_keys if product.delivery_kind is DeliveryKind.UNIQUE else product.max_qty


def _card_of(user: User) -> str:
    """Where ``Choices`` keeps the product whose card the buyer saw last (beside their last list)."""
    return f"{user.external_id}#card"
