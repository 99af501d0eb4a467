"""WeChat's pushes to the official account (``WECHAT_CALLBACK_PATH``) as aiohttp routes.

- ``GET ?signature&timestamp&nonce&echostr``: WeChat checking the server; ``echostr`` back when signed
  with our token, 403 otherwise.
- ``POST`` XML in plaintext, compatible or safe mode (``encrypt_type=aes`` + ``msg_signature``, body in
  ``<Encrypt>``). A bad signature gets 403, a body that is not a push 400, each logged in one line; the
  reply to an encrypted push is encrypted.
- Each push is taken once across instances (``WechatInboundService``): a retry gets ``success`` and
  changes nothing. The answer goes back as the passive reply when ready within ``REPLY_WITHIN`` seconds
  (WeChat gives up at 5); a slower one is answered ``success`` and, once ready, goes to the outbox as a
  ``ChatReply``, which the WeChat sender delivers as a customer-service message in the window the push
  opened. So does an answer ready in time by our measure whose request WeChat hung up on meanwhile (the
  push waited in a queue, or WeChat's 5 s ran out first): a passive reply written to a closed connection
  would be lost, and the retry that follows is answered ``success``. Only an answer ready as WeChat hangs
  up can still be lost; the buyer's ``订单`` shows what it said of an order.
- A push that opens the user's customer-service window (a message; a menu tap, follow or scan) is recorded
  in the background once answered (``WechatWindowService.contact``), which releases the messages parked
  for that user: the passive reply never waits for it."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from wechatpy import create_reply, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import check_signature

from core.messages import ChatReply
from core.services import Services
from core.services.wechat_inbound import event_key, message_key
from core.windows import EVENT, MESSAGE
from handlers.wechat.api import WechatApi
from handlers.wechat.dialogue import CHANNEL, Choices, Dialogue
from handlers.wechat.texts import Texts, fit, xml_safe

log = logging.getLogger(__name__)

REPLY_WITHIN = 4.0  # seconds: WeChat waits 5 for a passive reply, then retries and shows an error
MAX_BODY = 64 * 1024  # a push is a few hundred bytes; anything bigger is not from WeChat
MAX_OPENID = 64  # users.external_id; WeChat's openids are 28 characters
# In plaintext mode the signature covers the token, timestamp and nonce, not the body: whoever saw one signed
# URL (a proxy's access log) could post any body with it for ever. WeChat sends a push and its retries
# within seconds of its timestamp, so a timestamp further than this from the wall clock is refused.
FRESH_WITHIN = 600.0
SUCCESS = "success"  # "no passive reply", which WeChat accepts


@dataclass(frozen=True)
class WechatConfig:
    """What the callback needs, filled by the composition root from WECHAT_* settings."""

    app_id: str
    token: str
    aes_key: str | None  # None: plaintext mode only (an encrypted push is refused)
    locale_dir: Path  # compiled gettext catalogs (bot.i18n.compile_catalogs)
    callback_path: str = "/wechat"
    reply_within: float = REPLY_WITHIN


@dataclass
class _Reply:
    """The answer to one push on its way: handed to the push's request while that still waits for it
    (the passive reply), else to the outbox."""

    request: web.Request
    ready: asyncio.Future[str | None]
    waiting: bool = True  # False once the request stopped waiting (answered ``success``)

    def offer(self, text: str) -> bool:
        """Hand ``text`` to the waiting request; False when it is too late: the request answered
        ``success`` already, or WeChat hung up (it waited less than we hoped, and retries or gives up)."""
        if self.waiting and not self.ready.done() and self.request.transport is not None:
            self.ready.set_result(text)
            return True
        self.nothing()  # a request WeChat hung up on stops waiting too
        return False

    def nothing(self) -> None:
        """No reply to this push: the request answers ``success`` now."""
        if not self.ready.done():
            self.ready.set_result(None)


class WechatCallback:
    def __init__(
        self,
        services: Services,
        config: WechatConfig,
        dialogue: Dialogue | None = None,
        api: WechatApi | None = None,
    ) -> None:
        self.services, self.config = services, config
        self.dialogue = dialogue or Dialogue(services, Texts(config.locale_dir), Choices(), api)
        self.crypto = WeChatCrypto(config.token, config.aes_key, config.app_id) if config.aes_key else None
        self._running: set[asyncio.Task[None]] = set()  # pushes being answered (and windows recorded)

    async def verify(self, request: web.Request) -> web.Response:
        """Receives: WeChat's server check (GET)."""
        q = request.query
        if not self._signed(q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", "")):
            return _refuse(request, 403, "bad signature on the server check")
        return web.Response(text=q.get("echostr", ""))

    async def push(self, request: web.Request) -> web.Response:
        """Receives: a message or event (POST), in any of the three modes."""
        q = request.query
        timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
        if not self._signed(q.get("signature", ""), timestamp, nonce):
            return _refuse(request, 403, "bad signature")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _refuse(request, 400, "body too large")
        body = b""
        # read() returns what has arrived so far, not the whole body: read until its end
        while chunk := await request.content.read(MAX_BODY + 1 - len(body)):
            body += chunk
            if len(body) > MAX_BODY:
                return _refuse(request, 400, "body too large")
        encrypted = q.get("encrypt_type", "raw").lower() == "aes"
        if encrypted:
            if self.crypto is None:
                return _refuse(request, 400, "encrypted push but WECHAT_AES_KEY is not set")
            try:
                body = self.crypto.decrypt_message(
                    body, q.get("msg_signature", ""), timestamp, nonce
                ).encode()
            except (InvalidSignatureException, InvalidAppIdException):
                return _refuse(request, 403, "bad msg_signature or AppID in an encrypted push")
            except Exception:  # base64, padding, XML: any malformed envelope is the sender's fault
                return _refuse(request, 400, "malformed encrypted push")
        try:
            msg = parse_message(body)
            if msg is None or not msg.source:
                raise ValueError("no sender")
            if len(str(msg.source)) > MAX_OPENID:
                raise ValueError("a sender no openid could be")
        except Exception:  # xmltodict's ExpatError, a missing MsgType…: not a push
            return _refuse(request, 400, "malformed push")
        is_event = msg.type == "event"
        # an event's key names its EventKey too: two menu taps within one second are two pushes
        key = (
            event_key(msg.source, msg.time, f"{msg.event}:{getattr(msg, 'key', '') or ''}")
            if is_event
            else message_key(msg.id)
        )
        if not await self.services.wechat_inbound.take(key):
            log.info("wechat push %s already taken: a retry, answered success", key)
            return web.Response(text=SUCCESS)
        reply = _Reply(request, asyncio.get_running_loop().create_future())
        handling = asyncio.create_task(self._handle(msg, reply))
        self._running.add(handling)
        handling.add_done_callback(self._running.discard)
        text = await self._in_time(msg, reply)
        if text is None:
            return web.Response(text=SUCCESS)
        answer = create_reply(_cdata_safe(fit(xml_safe(text))), msg).render()
        if encrypted:
            assert self.crypto is not None
            answer = self.crypto.encrypt_message(answer, nonce, str(int(time.time())))
        return web.Response(text=answer, content_type="application/xml")

    async def _in_time(self, msg: Any, reply: _Reply) -> str | None:
        """The answer when it is ready within ``reply_within`` s, to go back as the passive reply; None
        otherwise (the push is answered ``success`` and the answer follows through the outbox)."""
        try:
            return await asyncio.wait_for(asyncio.shield(reply.ready), self.config.reply_within)
        except TimeoutError:
            reply.waiting = False
            if reply.ready.done():  # ready at the very deadline: WeChat still waits for it
                return reply.ready.result()
            log.warning(
                "wechat answer to %s took over %.1f s: answered success, the answer follows as a "
                "customer-service message",
                msg.source,
                self.config.reply_within,
            )
            return None
        except asyncio.CancelledError:  # the server let go of the request: the outbox carries the answer
            reply.waiting = False
            raise

    async def _handle(self, msg: Any, reply: _Reply) -> None:
        """Answer one push: the passive reply while its request waits, otherwise through the outbox;
        then record the window the push opened (releasing what waited for it), which the reply never
        waits for."""
        try:
            text = await self.dialogue.answer(msg)
        except Exception:
            log.exception("wechat push from %s failed", msg.source)
            text = None
        if text is None:
            reply.nothing()
        elif not reply.offer(text):
            await self._answer_later(str(msg.source), text)
        kind = window_opened_by(msg)
        if kind is not None:
            try:
                await self.services.wechat_windows.contact(str(msg.source), kind)
            except Exception:
                log.warning("wechat: recording %s's window failed", msg.source, exc_info=True)

    async def _answer_later(self, openid: str, text: str) -> None:
        """WeChat stopped waiting before ``text`` was ready (or hung up): the outbox's sender delivers it
        as a customer-service message, within the window this push opened and counted in it."""
        try:
            user = await self.services.users.find(CHANNEL, openid)
            if user is None:  # the dialogue makes the user's row for every push it answers
                log.warning("wechat: a late answer to %s has no user to go to: dropped", openid)
                return
            await self.services.outbox.tell(user.id, ChatReply(text))
        except Exception:
            log.exception("wechat: a late answer to %s could not be queued: lost", openid)
            return
        log.info("wechat: the answer to %s came too late for a passive reply: queued", openid)

    async def settle(self, _app: web.Application | None = None) -> None:
        """Wait until every push being answered is done, late answers queued and windows recorded
        (shutdown, tests)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def _signed(self, signature: str, timestamp: str, nonce: str) -> bool:
        try:
            if abs(time.time() - int(timestamp)) > FRESH_WITHIN:
                return False
        except ValueError:
            return False
        try:
            check_signature(self.config.token, signature, timestamp, nonce)
        except InvalidSignatureException:
            return False
        return True


# Events that open the customer-service window (1 minute, 3 messages): of the menu's buttons only those that
# push an event do (CLICK and the two scan-code kinds), not VIEW; a follow; a scan of a parametric QR code.
WINDOW_EVENTS = frozenset(
    {"subscribe", "subscribe_scan", "scan", "click", "scancode_push", "scancode_waitmsg"}
)


def window_opened_by(msg: Any) -> str | None:
    """``message`` or ``event``: how a push opens its sender's window; None when it opens none."""
    if msg.type != "event":
        return MESSAGE
    return EVENT if str(msg.event) in WINDOW_EVENTS else None


def _cdata_safe(text: str) -> str:
    """``text`` ready for wechatpy's ``<Content><![CDATA[…]]>``, which it does not escape: a "]]>" in it
    (a product's name) would end the section early and break the reply, so the section is split there."""
    return text.replace("]]>", "]]]]><![CDATA[>")


def _refuse(request: web.Request, status: int, why: str) -> web.Response:
    log.warning("wechat %s %s refused (%d): %s", request.method, request.path, status, why)
    return web.Response(status=status, text="")


def add_wechat_routes(
    app: web.Application, services: Services, config: WechatConfig, api: WechatApi | None = None
) -> WechatCallback:
    """Serve WeChat's pushes on ``config.callback_path`` of ``app`` (the webhook server's app); ``api``
    (when WECHAT_APP_SECRET is set) lets the dialogue call WeChat (distributors' QR codes)."""
    callback = WechatCallback(services, config, api=api)
    app.router.add_get(config.callback_path, callback.verify)
    app.router.add_post(config.callback_path, callback.push)
    app.on_shutdown.append(callback.settle)
    return callback


def build_wechat_app(
    services: Services, config: WechatConfig, api: WechatApi | None = None
) -> web.Application:
    """An aiohttp application serving only WeChat's pushes (tests, or a server of its own)."""
    app = web.Application()
    add_wechat_routes(app, services, config, api)
    return app
