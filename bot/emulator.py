"""A local Telegram Bot API server: the methods keyshop uses, with Telegram's validation and flood limits,
plus an API to play users (send text, tap a button, pay an invoice, upload a file, block the bot).

It serves ``/bot<token>/<method>`` and ``/file/bot<token>/<path>`` like api.telegram.org, so the real aiogram
client talks to it over HTTP (``TELEGRAM_API_URL``). ``keyshop sandbox`` and the end-to-end tests use it;
nothing here ever reaches Telegram.
"""

from __future__ import annotations

import asyncio
import contextlib
import html.parser
import itertools
import json
import math
import re
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN_RE = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{20,}$")
ALLOWED_HTML_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "tg-spoiler",
    "span",
    "blockquote",
    "tg-emoji",
}
JSON_FIELDS = {
    "reply_markup",
    "entities",
    "caption_entities",
    "prices",
    "commands",
    "scope",
    "allowed_updates",
    "link_preview_options",
    "reply_parameters",
}


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


class _HTMLCheck(html.parser.HTMLParser):
    """Telegram's HTML parse mode: only its tags, properly nested; returns the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_HTML_TAGS:
            raise _bad(f'can\'t parse entities: unsupported start tag "{tag}"')
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            raise _bad(f'can\'t parse entities: unexpected end tag "{tag}"')
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def visible_text(text: str, parse_mode: str | None) -> str:
    if (parse_mode or "").upper() != "HTML":
        return text
    p = _HTMLCheck()
    p.feed(text)
    p.close()
    if p.stack:
        raise _bad(f"can't parse entities: can't find end tag corresponding to start tag \"{p.stack[-1]}\"")
    return "".join(p.text)


class _Bucket:
    """Token bucket: ``rate`` per second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst, self.tokens, self.at = rate, burst, burst, time.monotonic()

    def take(self) -> float:
        """0 if allowed now, else seconds to wait."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class EmuUser:
    id: int
    first_name: str
    language_code: str | None = "en"
    username: str | None = None
    blocked_bot: bool = False

    def as_tg(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.language_code:
            d["language_code"] = self.language_code
        if self.username:
            d["username"] = self.username
        return d


@dataclass
class Payment:
    charge_id: str
    user_id: int
    currency: str
    amount: int
    payload: str
    refunded: bool = False
    date: int = field(default_factory=lambda: int(time.time()))


@dataclass
class Sent:
    """A message the bot sent (or edited), as a user would see it."""

    message: dict[str, Any]
    method: str

    @property
    def text(self) -> str:
        return str(self.message.get("text") or self.message.get("caption") or "")

    @property
    def buttons(self) -> list[dict[str, Any]]:
        markup = self.message.get("reply_markup") or {}
        return [b for row in markup.get("inline_keyboard", []) for b in row]

    def button(self, label_part: str) -> dict[str, Any]:
        for b in self.buttons:
            if label_part in b["text"]:
                return b
        raise LookupError(f"no button with {label_part!r} in {[b['text'] for b in self.buttons]}")


@dataclass
class Emulator:
    """The server's state. It serves one bot token (any well-formed one when ``token`` is None)."""

    token: str | None = None
    flood_limits: bool = True
    per_chat_rate: float = 1.0
    per_chat_burst: float = 3.0
    global_rate: float = 30.0
    pre_checkout_timeout: float = 10.0
    bot_id: int = 7_000_000_001
    bot_username: str = "keyshop_sandbox_bot"
    users: dict[int, EmuUser] = field(default_factory=dict)
    sent: dict[int, list[Sent]] = field(default_factory=lambda: defaultdict(list))
    payments: dict[str, Payment] = field(default_factory=dict)
    commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    callback_answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    faults: deque[tuple[str, int, int | None]] = field(default_factory=deque)
    on_send: list[Callable[[int, Sent], None]] = field(default_factory=list)
    star_ledger: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = defaultdict(lambda: itertools.count(1))
        self._changed = asyncio.Condition()
        self._pre_checkout: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._chat_buckets: dict[int, _Bucket] = {}
        self._global = _Bucket(self.global_rate, self.global_rate)
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._closing = False

    async def shutdown(self) -> None:
        """Answer pending long polls now, so the HTTP server can stop without waiting them out."""
        self._closing = True
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------ playing users

    def user(self, user_id: int, first_name: str = "Buyer", language_code: str | None = "en") -> EmuUser:
        u = self.users.get(user_id)
        if u is None:
            u = self.users[user_id] = EmuUser(user_id, first_name, language_code)
        return u

    def _chat(self, user: EmuUser) -> dict[str, Any]:
        return {"id": user.id, "type": "private", "first_name": user.first_name}

    def _user_message(self, user: EmuUser, **content: Any) -> dict[str, Any]:
        msg = {
            "message_id": next(self._message_ids[user.id]),
            "date": int(time.time()),
            "chat": self._chat(user),
            "from": user.as_tg(),
            **content,
        }
        self._messages[(user.id, msg["message_id"])] = msg
        return msg

    async def _push(self, **update: Any) -> dict[str, Any]:
        upd = {"update_id": next(self._update_ids), **update}
        async with self._changed:
            self._updates.append(upd)
            self._changed.notify_all()
        return upd

    async def send_text(self, user_id: int, text: str) -> dict[str, Any]:
        user = self.user(user_id)
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split()[0]
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return await self._push(message=self._user_message(user, **content))

    async def share_contact(self, user_id: int, phone: str) -> dict[str, Any]:
        user = self.user(user_id)
        contact = {"phone_number": phone, "first_name": user.first_name, "user_id": user.id}
        return await self._push(message=self._user_message(user, contact=contact))

    async def tap(self, user_id: int, sent: Sent | dict[str, Any], callback_data: str) -> str:
        """Tap an inline button: a callback query about that message. Returns the query id."""
        user = self.user(user_id)
        message = sent.message if isinstance(sent, Sent) else sent
        qid = str(secrets.randbits(63))
        await self._push(
            callback_query={
                "id": qid,
                "from": user.as_tg(),
                "message": message,
                "chat_instance": str(user.id),
                "data": callback_data,
            }
        )
        return qid

    async def pay(self, user_id: int, invoice: Sent, *, amount: int | None = None) -> dict[str, Any]:
        """Pay an invoice the way a Telegram client does: pre-checkout query first, and only if the bot
        answers ok within the time limit, the charge and a successful_payment message. Returns a report."""
        user = self.user(user_id)
        inv = invoice.message.get("invoice")
        if not inv:
            raise ValueError("that message is not an invoice")
        total = inv["total_amount"] if amount is None else amount
        payload = invoice.message["_payload"]
        qid = str(secrets.randbits(63))
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pre_checkout[qid] = fut
        await self._push(
            pre_checkout_query={
                "id": qid,
                "from": user.as_tg(),
                "currency": inv["currency"],
                "total_amount": total,
                "invoice_payload": payload,
            }
        )
        try:
            answer = await asyncio.wait_for(fut, self.pre_checkout_timeout)
        except TimeoutError:
            return {"paid": False, "error": "timeout"}
        finally:
            self._pre_checkout.pop(qid, None)
        if not answer.get("ok"):
            return {"paid": False, "error": answer.get("error_message", "")}
        charge = self.charge(user_id, inv["currency"], total, payload)
        await self.deliver_payment(user_id, charge.charge_id)
        return {"paid": True, "charge_id": charge.charge_id}

    def charge(self, user_id: int, currency: str, amount: int, payload: str) -> Payment:
        """Take the money (the part of paying the bot does not see until the update arrives)."""
        p = Payment(f"stxEMU{secrets.token_hex(12)}", user_id, currency, amount, payload)
        self.payments[p.charge_id] = p
        if currency == "XTR":
            self.star_ledger.append(
                {
                    "id": p.charge_id,
                    "amount": amount,
                    "date": p.date,
                    "source": {
                        "type": "user",
                        "transaction_type": "invoice_payment",
                        "user": self.user(user_id).as_tg(),
                        "invoice_payload": payload,
                    },
                }
            )
        return p

    async def deliver_payment(self, user_id: int, charge_id: str) -> None:
        """(Re)send the successful_payment message of a charge, as Telegram may do more than once."""
        user = self.user(user_id)
        p = self.payments[charge_id]
        await self._push(
            message=self._user_message(
                user,
                successful_payment={
                    "currency": p.currency,
                    "total_amount": p.amount,
                    "invoice_payload": p.payload,
                    "telegram_payment_charge_id": p.charge_id,
                    "provider_payment_charge_id": "",
                },
            )
        )

    async def upload(
        self, user_id: int, file_name: str, data: bytes, caption: str | None = None
    ) -> dict[str, Any]:
        user = self.user(user_id)
        file_id = f"DOC{secrets.token_hex(10)}"
        self.files[file_id] = (file_name, data)
        doc = {
            "file_id": file_id,
            "file_unique_id": file_id[3:15],
            "file_name": file_name,
            "file_size": len(data),
        }
        content: dict[str, Any] = {"document": doc}
        if caption:
            content["caption"] = caption
            if caption.startswith("/"):
                content["caption_entities"] = [
                    {"type": "bot_command", "offset": 0, "length": len(caption.split()[0])}
                ]
        return await self._push(message=self._user_message(user, **content))

    def block(self, user_id: int, blocked: bool = True) -> None:
        self.user(user_id).blocked_bot = blocked

    def fail_next(self, method: str, code: int, retry_after: int | None = None, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` fail with ``code`` (429 + ``retry_after``, 500...)."""
        for _ in range(times):
            self.faults.append((method, code, retry_after))

    def messages(self, user_id: int) -> list[Sent]:
        return list(self.sent.get(user_id, []))

    async def wait_for(
        self,
        user_id: int,
        predicate: Callable[[Sent], bool] = lambda s: True,
        *,
        after: int = 0,
        within: float = 5.0,
    ) -> Sent:
        """The first message to ``user_id`` (from index ``after``) matching ``predicate``, waiting for it."""

        def find() -> Sent | None:
            return next((s for s in self.sent.get(user_id, [])[after:] if predicate(s)), None)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: find() is not None), within)
        found = find()
        assert found is not None
        return found

    # ------------------------------------------------------------------ the Bot API

    def _check_token(self, token: str) -> None:
        if (self.token is not None and token != self.token) or not TOKEN_RE.match(token):
            raise ApiError(401, "Unauthorized")

    def _flood(self, chat_id: int) -> None:
        if not self.flood_limits:
            return
        wait = self._global.take()
        bucket = self._chat_buckets.setdefault(chat_id, _Bucket(self.per_chat_rate, self.per_chat_burst))
        wait = max(wait, bucket.take())
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)

    def _target(self, params: dict[str, Any]) -> EmuUser:
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise _bad("chat_id is empty")
        try:
            chat_id = int(raw)
        except (TypeError, ValueError):
            raise _bad("chat not found") from None
        user = self.users.get(chat_id)
        if user is None:
            raise _bad("chat not found")
        if user.blocked_bot:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return user

    @staticmethod
    def _check_markup(markup: Any) -> None:
        if markup is None:
            return
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for b in row:
                if not b.get("text"):
                    raise _bad("text buttons are unallowed in the inline keyboard")
                data = b.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise _bad("BUTTON_DATA_INVALID")

    def _record(self, user: EmuUser, method: str, message: dict[str, Any]) -> dict[str, Any]:
        sent = Sent(message, method)
        self.sent[user.id].append(sent)
        for cb in self.on_send:
            cb(user.id, sent)
        return message

    def _bot_message(self, user: EmuUser, **content: Any) -> dict[str, Any]:
        markup = content.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" not in markup:
            content["reply_markup"] = None  # a real Message carries only an inline keyboard
        msg = {
            "message_id": next(self._message_ids[user.id]),
            "date": int(time.time()),
            "chat": self._chat(user),
            "from": {
                "id": self.bot_id,
                "is_bot": True,
                "first_name": "keyshop",
                "username": self.bot_username,
            },
            **{k: v for k, v in content.items() if v is not None},
        }
        self._messages[(user.id, msg["message_id"])] = msg
        return msg

    async def call(self, token: str, method: str, params: dict[str, Any]) -> Any:
        self._check_token(token)
        name = method.lower()
        self.calls.append((method, params))
        for i, (m, code, retry) in enumerate(self.faults):
            if m.lower() == name:
                del self.faults[i]
                if code == 429:
                    raise ApiError(
                        429, f"Too Many Requests: retry after {retry or 1}", retry_after=retry or 1
                    )
                raise ApiError(code, "Internal Server Error" if code >= 500 else "Bad Request: injected")
        handler = getattr(self, f"m_{name}", None)
        if handler is None:
            raise ApiError(404, "Not Found: method not found")
        result = handler(params)
        if asyncio.iscoroutine(result):
            result = await result
        return result

    def m_getme(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "keyshop",
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def m_deletewebhook(self, p: dict[str, Any]) -> bool:
        return True

    def m_getwebhookinfo(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": len(self._updates)}

    async def m_getupdates(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(p.get("offset") or 0)
        limit = min(100, max(1, int(p.get("limit") or 100)))
        timeout = min(50.0, float(p.get("timeout") or 0))
        async with self._changed:
            if offset:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            if not self._updates and timeout and not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda: bool(self._updates) or self._closing), timeout
                    )
            return self._updates[:limit]

    def m_setmycommands(self, p: dict[str, Any]) -> bool:
        cmds = p.get("commands")
        if not isinstance(cmds, list) or len(cmds) > 100:
            raise _bad("commands must be a list of at most 100")
        for c in cmds:
            if (
                not re.fullmatch(r"[a-z0-9_]{1,32}", str(c.get("command", "")))
                or not 1 <= len(c.get("description", "")) <= 256
            ):
                raise _bad("BOT_COMMAND_INVALID")
        self.commands[p.get("language_code") or ""] = cmds
        return True

    async def m_sendmessage(self, p: dict[str, Any]) -> dict[str, Any]:
        user = self._target(p)
        text = str(p.get("text") or "")
        shown = visible_text(text, p.get("parse_mode"))
        if not shown.strip():
            raise _bad("message text is empty")
        if len(shown) > 4096:
            raise _bad("message is too long")
        self._check_markup(p.get("reply_markup"))
        self._flood(user.id)
        msg = self._bot_message(user, text=shown, reply_markup=p.get("reply_markup"))
        msg["_html"] = text
        return await self._notify(self._record(user, "sendMessage", msg))

    async def _notify(self, message: dict[str, Any]) -> dict[str, Any]:
        async with self._changed:
            self._changed.notify_all()
        return {k: v for k, v in message.items() if not k.startswith("_")}

    def _editable(self, p: dict[str, Any]) -> tuple[EmuUser, dict[str, Any]]:
        user = self._target(p)
        msg = self._messages.get((user.id, int(p.get("message_id") or 0)))
        if msg is None:
            raise _bad("message to edit not found")
        if msg["from"]["id"] != self.bot_id:
            raise _bad("message can't be edited")
        return user, msg

    async def m_editmessagetext(self, p: dict[str, Any]) -> dict[str, Any]:
        user, msg = self._editable(p)
        shown = visible_text(str(p.get("text") or ""), p.get("parse_mode"))
        if not shown.strip():
            raise _bad("message text is empty")
        self._check_markup(p.get("reply_markup"))
        if shown == msg.get("text") and p.get("reply_markup") == msg.get("reply_markup"):
            raise _bad(
                "message is not modified: specified new message content and reply markup are exactly the same"
            )
        msg["text"], msg["reply_markup"], msg["edit_date"] = shown, p.get("reply_markup"), int(time.time())
        return await self._notify(self._record(user, "editMessageText", dict(msg)))

    async def m_editmessagereplymarkup(self, p: dict[str, Any]) -> dict[str, Any]:
        user, msg = self._editable(p)
        self._check_markup(p.get("reply_markup"))
        if p.get("reply_markup") == msg.get("reply_markup"):
            raise _bad("message is not modified")
        msg["reply_markup"] = p.get("reply_markup")
        return await self._notify(self._record(user, "editMessageReplyMarkup", dict(msg)))

    def m_deletemessage(self, p: dict[str, Any]) -> bool:
        _, msg = self._editable(p)
        msg["deleted"] = True
        return True

    def m_answercallbackquery(self, p: dict[str, Any]) -> bool:
        qid = str(p.get("callback_query_id") or "")
        if not qid or qid in self.callback_answers:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        if len(str(p.get("text") or "")) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        self.callback_answers[qid] = {
            "text": p.get("text"),
            "show_alert": p.get("show_alert") in (True, "true"),
        }
        return True

    async def m_sendinvoice(self, p: dict[str, Any]) -> dict[str, Any]:
        user = self._target(p)
        title, description = str(p.get("title") or ""), str(p.get("description") or "")
        payload, currency = str(p.get("payload") or ""), str(p.get("currency") or "")
        prices = p.get("prices")
        if not 1 <= len(title) <= 32:
            raise _bad("INVOICE_TITLE_INVALID" if title else "title is empty")
        if not 1 <= len(description) <= 255:
            raise _bad("INVOICE_DESCRIPTION_INVALID")
        if not 1 <= len(payload.encode()) <= 128:
            raise _bad("INVOICE_PAYLOAD_INVALID")
        if not isinstance(prices, list) or not prices:
            raise _bad("prices are empty")
        if currency == "XTR":
            if p.get("provider_token"):
                raise _bad("provider_token must be empty for payments in Telegram Stars")
            if len(prices) != 1:
                raise _bad("STARS_INVOICE_INVALID: exactly one price is allowed")
        elif not p.get("provider_token"):
            raise _bad("PAYMENT_PROVIDER_INVALID")
        total = 0
        for price in prices:
            amount = price.get("amount")
            if not isinstance(amount, int) or amount <= 0 or not price.get("label"):
                raise _bad("CURRENCY_TOTAL_AMOUNT_INVALID")
            total += amount
        self._check_markup(p.get("reply_markup"))
        self._flood(user.id)
        inv = {
            "title": title,
            "description": description,
            "start_parameter": "",
            "currency": currency,
            "total_amount": total,
        }
        msg = self._bot_message(user, invoice=inv, reply_markup=p.get("reply_markup"))
        msg["_payload"] = payload
        return await self._notify(self._record(user, "sendInvoice", msg))

    def m_answerprecheckoutquery(self, p: dict[str, Any]) -> bool:
        qid = str(p.get("pre_checkout_query_id") or "")
        fut = self._pre_checkout.get(qid)
        if fut is None or fut.done():
            raise _bad("QUERY_ID_INVALID")
        ok = p.get("ok") in (True, "true", "True", 1)
        if not ok and not p.get("error_message"):
            raise _bad("error_message is required when ok is false")
        fut.set_result({"ok": ok, "error_message": p.get("error_message")})
        return True

    def m_refundstarpayment(self, p: dict[str, Any]) -> bool:
        charge = self.payments.get(str(p.get("telegram_payment_charge_id") or ""))
        if charge is None or str(charge.user_id) != str(p.get("user_id")):
            raise _bad("CHARGE_NOT_FOUND")
        if charge.refunded:
            raise _bad("CHARGE_ALREADY_REFUNDED")
        charge.refunded = True
        self.star_ledger.append(
            {
                "id": charge.charge_id,
                "amount": charge.amount,
                "date": int(time.time()),
                "receiver": {
                    "type": "user",
                    "transaction_type": "invoice_payment",
                    "user": self.user(charge.user_id).as_tg(),
                },
            }
        )
        return True

    def m_getstartransactions(self, p: dict[str, Any]) -> dict[str, Any]:
        """The bot's Stars ledger in the order things happened: payments in, refunds out."""
        offset = int(p.get("offset") or 0)
        limit = int(p.get("limit") or 100)
        if offset < 0 or not 1 <= limit <= 100:
            raise _bad("offset must be >= 0 and limit 1 to 100")
        return {"transactions": self.star_ledger[offset : offset + limit]}

    async def _send_file(self, p: dict[str, Any], kind: str, method: str) -> dict[str, Any]:
        user = self._target(p)
        upload = p.get(kind)
        if not isinstance(upload, tuple):
            raise _bad(f"there is no {kind} in the request")
        name, data = upload
        if not data:
            raise _bad("file must be non-empty")
        caption = p.get("caption")
        shown = visible_text(str(caption), p.get("parse_mode")) if caption else None
        if shown and len(shown) > 1024:
            raise _bad("message caption is too long")
        self._check_markup(p.get("reply_markup"))
        self._flood(user.id)
        file_id = f"{kind[:3].upper()}{secrets.token_hex(10)}"
        self.files[file_id] = (name, data)
        meta = {"file_id": file_id, "file_unique_id": file_id[3:15], "file_size": len(data)}
        content = (
            {"document": {**meta, "file_name": name}}
            if kind == "document"
            else {"photo": [{**meta, "width": 1, "height": 1}]}
        )
        msg = self._bot_message(user, caption=shown, reply_markup=p.get("reply_markup"), **content)
        return await self._notify(self._record(user, method, msg))

    async def m_senddocument(self, p: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file(p, "document", "sendDocument")

    async def m_sendphoto(self, p: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file(p, "photo", "sendPhoto")

    def m_getfile(self, p: dict[str, Any]) -> dict[str, Any]:
        file_id = str(p.get("file_id") or "")
        if file_id not in self.files:
            raise _bad("invalid file_id")
        _, data = self.files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": file_id[3:15],
            "file_size": len(data),
            "file_path": f"documents/{file_id}",
        }

    # ------------------------------------------------------------------ HTTP

    def app(self) -> web.Application:
        app = web.Application(client_max_size=50 * 2**20)
        app.router.add_route("*", "/bot{token}/{method}", self._http_method)
        app.router.add_get("/file/bot{token}/documents/{file_id}", self._http_file)
        return app

    async def _http_method(self, request: web.Request) -> web.Response:
        params: dict[str, Any] = {}
        if request.content_type == "application/json":
            params = await request.json() if request.can_read_body else {}
        elif request.method == "POST":
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    params[key] = (value.filename, value.file.read())
                elif key in JSON_FIELDS:
                    try:
                        params[key] = json.loads(str(value))
                    except ValueError:
                        return self._error(_bad(f"can't parse {key} JSON object"))
                else:
                    params[key] = str(value)
        params.update({k: v for k, v in request.query.items() if k not in params})
        # attach:// references point at other multipart fields
        for key, value in list(params.items()):
            if isinstance(value, str) and value.startswith("attach://"):
                params[key] = params.get(value.removeprefix("attach://"))
        try:
            result = await self.call(request.match_info["token"], request.match_info["method"], params)
        except ApiError as e:
            return self._error(e)
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _error(e: ApiError) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": e.code, "description": e.description}
        if e.retry_after is not None:
            body["parameters"] = {"retry_after": e.retry_after}
        return web.json_response(body, status=e.code)

    async def _http_file(self, request: web.Request) -> web.Response:
        try:
            self._check_token(request.match_info["token"])
        except ApiError as e:
            return self._error(e)
        found = self.files.get(request.match_info["file_id"])
        if found is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=found[1], content_type="application/octet-stream")


async def serve(emulator: Emulator, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, str]:
    """Start the emulator's HTTP server; returns the runner (to ``cleanup()``) and its base URL."""
    app = emulator.app()

    async def wake_long_polls(_: web.Application) -> None:
        await emulator.shutdown()

    app.on_shutdown.append(wake_long_polls)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, f"http://{host}:{bound}"
