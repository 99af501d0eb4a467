"""The Bot API methods keyshop uses, each validated as Telegram validates it."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import Any

import aiohttp

from sandbox.telegram import webhook
from sandbox.telegram.api_files import FileMethods
from sandbox.telegram.api_payments import PaymentMethods
from sandbox.telegram.errors import QUERY_INVALID, ApiError, bad, conflict, forbidden
from sandbox.telegram.html import formatted
from sandbox.telegram.inline import InlineMethods
from sandbox.telegram.limits import (
    CALLBACK_ANSWER_MAX,
    check_caption,
    check_commands,
    check_language,
    check_markup,
    check_scope,
    check_text,
)
from sandbox.telegram.state import is_private

TOKEN_RE = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{20,}$")
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same as a "
    "current content and reply markup of the message"
)


class BotApi(FileMethods, PaymentMethods, InlineMethods):
    """The Bot API's methods, ``m_<method name in lower case>``: updates (polling, webhook), commands,
    sending and editing messages, callback answers; files, payments and inline answers are their
    mixins'."""

    def _check_token(self, token: str) -> None:
        if (self.token is not None and token != self.token) or not TOKEN_RE.match(token):
            raise ApiError(401, "Unauthorized")

    async def call(self, token: str, method: str, params: dict[str, Any]) -> Any:
        self._check_token(token)
        self._last_token = token
        name = method.lower()
        self.calls.append((method, params))
        for i, (m, code, retry) in enumerate(self.faults):
            if m.lower() == name:
                del self.faults[i]
                if code == 429:
                    raise ApiError(
                        429, f"Too Many Requests: retry after {retry or 1}", retry_after=retry or 1
                    )
                if code == 403:
                    raise forbidden("bot was blocked by the user")
                raise ApiError(code, "Internal Server Error" if code >= 500 else "Bad Request: injected")
        handler = getattr(self, f"m_{name}", None)
        if handler is None:
            raise ApiError(404, "Not Found: method not found")
        result = handler(params)
        if asyncio.iscoroutine(result):
            result = await result
        for i, (m, seconds) in enumerate(self.stalls):
            if m.lower() == name:
                del self.stalls[i]
                await asyncio.sleep(seconds)  # done, but the answer is late (a client may give up first)
                break
        return result

    def m_getme(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "keyshop",
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": self.inline_mode,
        }

    # ------------------------------------------------------------------ updates: polling or webhook

    async def m_getupdates(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        if self._webhook is not None:
            raise conflict(
                "can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first"
            )
        offset = int(p.get("offset") or 0)
        limit = min(100, max(1, int(p.get("limit") or 100)))
        timeout = min(50.0, float(p.get("timeout") or 0))
        if isinstance(p.get("allowed_updates"), list):
            self._allowed_updates = p["allowed_updates"]
        async with self._changed:
            if offset:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            if not self._pending() and timeout and not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._changed.wait_for(
                            lambda: bool(self._pending()) or self._closing or self._webhook is not None
                        ),
                        timeout,
                    )
            if self._webhook is not None:
                raise conflict("terminated by setWebhook request")
            return self._pending()[:limit]

    async def m_setwebhook(self, p: dict[str, Any]) -> bool:
        url = str(p.get("url") or "")
        if not url:
            return await self.m_deletewebhook(p)
        webhook.check_url(url)
        secret = str(p.get("secret_token") or "")
        webhook.check_secret(secret)
        max_connections = int(p.get("max_connections") or 40)
        if not 1 <= max_connections <= 100:
            raise bad("max_connections must be between 1 and 100")
        if isinstance(p.get("allowed_updates"), list):
            self._allowed_updates = p["allowed_updates"]
        await self._stop_webhook()
        if p.get("drop_pending_updates") in (True, "true", "True", 1):
            self._updates.clear()
        self._webhook = webhook.Webhook(url, secret, self._last_token, max_connections)
        self._webhook_task = asyncio.create_task(self._deliver(self._webhook), name="emulator-webhook")
        async with self._changed:
            self._changed.notify_all()  # a long poll under way ends with a conflict
        return True

    async def m_deletewebhook(self, p: dict[str, Any]) -> bool:
        await self._stop_webhook()
        self._webhook = None
        if p.get("drop_pending_updates") in (True, "true", "True", 1):
            self._updates.clear()
        async with self._changed:
            self._changed.notify_all()  # pollers may poll again
        return True

    def m_getwebhookinfo(self, p: dict[str, Any]) -> dict[str, Any]:
        if self._webhook is None:
            return {"url": "", "has_custom_certificate": False, "pending_update_count": len(self._pending())}
        return self._webhook.info(len(self._pending()), self._allowed_updates)

    async def _deliver(self, hook: webhook.Webhook) -> None:
        """POST pending updates to the webhook in order, each until it is answered with 2xx (through the
        balancer, when there is one: ``balance_webhook``)."""
        failures = 0
        async with aiohttp.ClientSession() as session:
            while not self._closing:
                async with self._changed:
                    await self._changed.wait_for(lambda: bool(self._pending()) or self._closing)
                    if self._closing:
                        return
                    update = self._pending()[0]
                answer = await hook.post(session, update, self.webhook_timeout, self._balancer)
                if not answer.delivered:
                    delays = self.webhook_retry_delays
                    await asyncio.sleep(delays[min(failures, len(delays) - 1)])
                    failures += 1
                    continue
                failures = 0
                self.webhook_deliveries.append((update["update_id"], answer.taken_by or hook.url))
                async with self._changed:
                    self._updates = [u for u in self._updates if u["update_id"] != update["update_id"]]
                    self._changed.notify_all()
                if answer.call is not None:
                    params = {k: v for k, v in answer.call.items() if k != "method"}
                    with contextlib.suppress(ApiError):  # Telegram drops a failing reply-call silently
                        await self.call(hook.token, str(answer.call["method"]), params)

    # ------------------------------------------------------------------ sending and editing

    def m_setmycommands(self, p: dict[str, Any]) -> bool:
        cmds = check_commands(p.get("commands"), p.get("language_code"))
        where = self._command_scope(p.get("scope"))
        language = str(p.get("language_code") or "")
        if where == "default":  # ``commands``: the default scope's lists, by language
            self.commands[language] = cmds
        else:
            self.scoped_commands[(where, language)] = cmds
        return True

    def m_deletemycommands(self, p: dict[str, Any]) -> bool:
        language = check_language(p.get("language_code"))
        where = self._command_scope(p.get("scope"))
        if where == "default":
            self.commands.pop(language, None)
        else:
            self.scoped_commands.pop((where, language), None)
        return True

    def _command_scope(self, raw: Any) -> str:
        """A command scope as a key (``default``, ``chat:<id>``, ``chat_member:<chat>:<user>``, …); the
        chat of a chat scope must be one the bot knows (a user who started it, a group it is in)."""
        scope = check_scope(raw)
        kind = str(scope["type"])
        if "chat_id" not in scope:
            return kind
        try:
            chat_id = int(scope["chat_id"])
        except (TypeError, ValueError):
            raise bad("chat not found") from None
        user, group = self.users.get(chat_id), self.chats.get(chat_id)
        # a user who never opened the bot has no chat with it (a blocked bot still has one)
        known = (user is not None and user.started) if chat_id > 0 else (group and group.bot_is_member)
        if not known:
            raise bad("chat not found")
        if kind != "chat" and chat_id > 0:
            raise bad("can't use this scope in a private chat")  # administrators and members: groups
        return f"{kind}:{chat_id}" + (f":{int(scope['user_id'])}" if kind == "chat_member" else "")

    def menu(self, user_id: int, language_code: str | None = None) -> list[str]:
        """The commands a user's client shows in their private chat with the bot, picked as Telegram
        picks them: the chat's list in their language, the chat's, all private chats' in their language,
        all private chats', the default's in their language, the default's."""
        lang = (language_code or "")[:2]
        chat = f"chat:{user_id}"
        for where in (chat, "all_private_chats"):
            for code in ([lang] if lang else []) + [""]:
                if (where, code) in self.scoped_commands:
                    return [c["command"] for c in self.scoped_commands[(where, code)]]
        for code in ([lang] if lang else []) + [""]:
            if code in self.commands:
                return [c["command"] for c in self.commands[code]]
        return []

    async def m_sendmessage(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id, chat = self._target(p)
        group = self.chats.get(chat_id)
        if group is not None and not group.bot_can_post:
            raise bad("not enough rights to send text messages to the chat")
        text = str(p.get("text") or "")
        if not text:
            raise bad("message text is empty")
        shown, entities = formatted(text, p.get("parse_mode"))
        check_text(shown)
        kind = check_markup(p.get("reply_markup"), private=is_private(chat))
        replied = self._replied(chat_id, p)
        self._flood(chat_id)
        msg = self._bot_message(chat_id, chat, text=shown, entities=entities, reply_to_message=replied)
        keyboard = self._apply_markup(chat_id, msg, p.get("reply_markup"), kind)
        msg["_html"] = text
        return await self._notify(self._record(chat_id, "sendMessage", msg, keyboard))

    def _editable(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if p.get("inline_message_id"):
            raise bad("inline messages are not supported by the emulator")
        chat_id, _ = self._target(p)
        msg = self._messages.get((chat_id, int(p.get("message_id") or 0)))
        if msg is None or msg.get("_deleted"):
            raise bad("message to edit not found")
        if not msg.get("_by_bot"):
            raise bad("message can't be edited")
        return chat_id, msg

    async def m_editmessagetext(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id, msg = self._editable(p)
        text = str(p.get("text") or "")
        if not text:
            raise bad("message text is empty")
        shown, entities = formatted(text, p.get("parse_mode"))
        check_text(shown)
        markup = p.get("reply_markup")
        check_markup(markup, inline_only=True)
        if "text" not in msg:
            raise bad("there is no text in the message to edit")
        if (shown, entities, markup) == (msg.get("text"), msg.get("entities", []), msg.get("reply_markup")):
            raise bad(_NOT_MODIFIED)
        msg["text"], msg["_html"], msg["edit_date"] = shown, text, int(time.time())
        msg["entities"] = entities
        if not entities:
            msg.pop("entities")
        self._set_inline(msg, markup)
        return await self._notify(self._record(chat_id, "editMessageText", dict(msg)))

    async def m_editmessagecaption(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id, msg = self._editable(p)
        if "text" in msg or "invoice" in msg:
            raise bad("there is no caption in the message to edit")
        shown, entities = formatted(str(p.get("caption") or ""), p.get("parse_mode"))
        check_caption(shown)
        markup = p.get("reply_markup")
        check_markup(markup, inline_only=True)
        old = (msg.get("caption", ""), msg.get("caption_entities", []), msg.get("reply_markup"))
        if (shown, entities, markup) == old:
            raise bad(_NOT_MODIFIED)
        msg["caption"], msg["caption_entities"], msg["edit_date"] = shown, entities, int(time.time())
        for key in ("caption", "caption_entities"):
            if not msg[key]:
                msg.pop(key)
        self._set_inline(msg, markup)
        return await self._notify(self._record(chat_id, "editMessageCaption", dict(msg)))

    async def m_editmessagereplymarkup(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id, msg = self._editable(p)
        markup = p.get("reply_markup")
        check_markup(markup, inline_only=True)
        if (markup or None) == msg.get("reply_markup"):
            raise bad(_NOT_MODIFIED)
        self._set_inline(msg, markup)
        return await self._notify(self._record(chat_id, "editMessageReplyMarkup", dict(msg)))

    def m_deletemessage(self, p: dict[str, Any]) -> bool:
        """The bot's own messages, and in private chats the user's too."""
        chat_id, chat = self._target(p)
        msg = self._messages.get((chat_id, int(p.get("message_id") or 0)))
        if msg is None or msg.get("_deleted"):
            raise bad("message to delete not found")
        if not msg.get("_by_bot") and not is_private(chat):
            raise bad("message can't be deleted")
        msg["_deleted"] = True
        return True

    def m_answercallbackquery(self, p: dict[str, Any]) -> bool:
        """Only ids the emulator issued, once each, within ``callback_ttl`` seconds of the tap."""
        qid = str(p.get("callback_query_id") or "")
        issued = self._queries.get(qid)
        if issued is None or qid in self.callback_answers or self.clock() - issued > self.callback_ttl:
            raise bad(QUERY_INVALID)
        text = str(p.get("text") or "")
        if len(text) > CALLBACK_ANSWER_MAX:
            raise bad("MESSAGE_TOO_LONG")
        if p.get("url"):
            raise bad("URL_INVALID")  # only game and t.me/bot?start= links; keyshop uses neither
        show_alert = p.get("show_alert") in (True, "true")
        self.callback_answers[qid] = {"text": p.get("text"), "show_alert": show_alert}
        return True
