"""Inline mode: a user types ``@bot words`` in any chat, the bot answers with results
(``answerInlineQuery``), the user picks one and it is posted in that chat as the user's own message sent
``via_bot``; with inline feedback on, the bot then learns which result was chosen (``chosen_inline_result``).

BotFather's switches are the emulator's settings: ``inline_mode`` (/setinline: without it clients send no
inline queries and getMe says ``supports_inline_queries: false``) and ``inline_feedback``
(/setinlinefeedback). A test plays the user with ``inline_query``, ``inline_answer`` and ``choose``.

answerInlineQuery is refused as Telegram refuses it. The Bot API server parses the request first
(telegram-bot-api ``Client::get_inline_query_results``, ``get_inline_query_result``,
``get_input_message_content``, ``get_inline_query_results_button``), with its own wording; Telegram's servers
then check the content (the errors of ``messages.setInlineBotResults``):

* the query: an id Telegram issued, answered once, within ``inline_ttl`` seconds (10, like a pre-checkout
  query; Telegram's deadline is undocumented) — otherwise the same "query is too old" as callback queries;
* ``results``: an array of at most 50; each an object with ``type``, ``id`` (1-64 bytes, unique among the
  results: RESULT_ID_INVALID, RESULT_ID_DUPLICATE); an article needs a non-empty ``title``
  (ARTICLE_TITLE_EMPTY) and ``input_message_content`` (or the legacy ``message_text``) whose text is 1-4096
  characters after its ``parse_mode`` is applied (MESSAGE_EMPTY, MESSAGE_TOO_LONG; HTML as ``html`` parses
  it); ``reply_markup`` an inline keyboard by ``limits.check_markup``'s rules;
* ``next_offset``: at most 64 bytes (NEXT_OFFSET_INVALID); ``cache_time`` is clamped to 0-86400 as the
  Bot API server clamps it (never refused);
* ``button``: ``text`` and exactly one of ``start_parameter`` (1-64 of ``A-Z a-z 0-9 _ -``) or
  ``web_app`` (an ``https://`` URL); legacy ``switch_pm_text``/``switch_pm_parameter`` make the same button.

Assumed where Telegram does not say: only ``article`` results are played (any other type the Bot API knows
is refused as "not supported by the emulator", as editing inline messages is); the message posted from a
result reaches the bot as an update only in the bot's own chat (in a group the bot hears of it through
``chosen_inline_result``); ``inline_message_id`` is given only for a result with an inline keyboard, as
the Bot API documents.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sandbox.telegram.chats import EmuChat, Sent
from sandbox.telegram.errors import QUERY_INVALID, ApiError, bad
from sandbox.telegram.html import formatted
from sandbox.telegram.limits import DEEP_LINK_RE, TEXT_MAX, check_markup
from sandbox.telegram.state import EmulatorState

QUERY_MAX = 256  # characters of an inline query a client sends
RESULTS_MAX = 50
RESULT_ID_MAX_BYTES = 64
NEXT_OFFSET_MAX_BYTES = 64
CACHE_TIME_MAX = 24 * 60 * 60
# Every result type the Bot API knows (InlineQueryResult*); the emulator plays articles only.
RESULT_TYPES = frozenset(
    {"article", "audio", "contact", "document", "game", "gif", "location", "mpeg4_gif", "photo"}
    | {"sticker", "venue", "video", "voice"}
)
_RESULT = "Can't parse inline query result: "
_BUTTON = "Can't parse inline query results button: "


@dataclass
class InlineQuery:
    """An inline query Telegram sent the bot, and where a chosen result will be posted."""

    id: str
    user_id: int
    query: str
    chat: dict[str, Any]  # the Chat the user typed in
    chat_type: str
    issued: float  # by ``clock``
    answered: asyncio.Future[dict[str, Any]]


def _string(obj: dict[str, Any], name: str, prefix: str) -> str:
    """A required string field, as tdlib's JSON reader takes it (a number is read as its digits)."""
    if obj.get(name) is None:
        raise bad(f'{prefix}Can\'t find field "{name}"')
    value = obj[name]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise bad(f'{prefix}Field "{name}" must be of type String')
    return str(value)


def _parse_result(raw: Any) -> dict[str, Any]:
    """One result as the Bot API server parses it (its wording); Telegram's own checks come after."""
    if not isinstance(raw, dict):
        raise bad(_RESULT + "Inline query result must be an object")
    kind = _string(raw, "type", _RESULT).lower()
    rid = _string(raw, "id", _RESULT)
    content = raw.get("input_message_content")
    if content is None:  # legacy: the text on the result itself
        text, parse_mode = _string(raw, "message_text", _RESULT), raw.get("parse_mode")
    elif not isinstance(content, dict):
        raise bad(_RESULT + 'Field "input_message_content" must be of type Object')
    else:
        text, parse_mode = str(content.get("message_text") or ""), content.get("parse_mode")
        if not text:
            if any(k in content for k in ("latitude", "phone_number", "payload")):
                raise bad("location, contact and invoice message contents are not supported by the emulator")
            raise bad(_RESULT + "Input message content is not specified")
    try:
        shown, entities = formatted(text, parse_mode)
    except ApiError as e:
        raise bad(_RESULT + e.description.removeprefix("Bad Request: ")) from None
    markup = raw.get("reply_markup")
    if markup is not None:
        check_markup(markup, inline_only=True)
    if kind not in RESULT_TYPES:
        raise bad(f'{_RESULT}type "{kind}" is unsupported for the inline query result')
    if kind != "article":
        raise bad(f"inline query results of type {kind} are not supported by the emulator")
    title = _string(raw, "title", _RESULT)
    description = raw.get("description")
    return {
        "type": kind,
        "id": rid,
        "title": title,
        "description": str(description) if description is not None else None,
        "text": shown,
        "entities": entities,
        "html": text,
        "reply_markup": markup or None,
    }


def check_results(raw: Any) -> list[dict[str, Any]]:
    """answerInlineQuery's ``results``: parsed by the Bot API server, then checked by Telegram."""
    if raw is None or raw == "":
        return []
    if not isinstance(raw, list):
        raise bad("Expected an Array of inline query results")
    if len(raw) > RESULTS_MAX:
        raise bad("Too many inline query results specified")
    results = [_parse_result(r) for r in raw]
    seen: set[str] = set()
    for r in results:
        if not 1 <= len(r["id"].encode()) <= RESULT_ID_MAX_BYTES:
            raise bad("RESULT_ID_INVALID")
        if r["id"] in seen:
            raise bad("RESULT_ID_DUPLICATE")
        seen.add(r["id"])
        if not r["title"].strip():
            raise bad("ARTICLE_TITLE_EMPTY")
        if not r["text"].strip():
            raise bad("MESSAGE_EMPTY")
        if len(r["text"]) > TEXT_MAX:
            raise bad("MESSAGE_TOO_LONG")
    return results


def check_button(p: dict[str, Any]) -> dict[str, Any] | None:
    """answerInlineQuery's ``button`` (or the legacy ``switch_pm_text``/``switch_pm_parameter``)."""
    raw = p.get("button")
    if raw in (None, ""):
        if not p.get("switch_pm_text"):
            return None
        raw = {"text": p["switch_pm_text"], "start_parameter": str(p.get("switch_pm_parameter") or "")}
    if not isinstance(raw, dict):
        raise bad(_BUTTON + "InlineQueryResultsButton must be an Object")
    text = _string(raw, "text", _BUTTON)
    if "start_parameter" in raw:
        parameter = _string(raw, "start_parameter", _BUTTON)
        if not text:
            raise bad("SWITCH_PM_TEXT_EMPTY")
        if not parameter:
            raise bad("START_PARAM_EMPTY")
        if not DEEP_LINK_RE.fullmatch(parameter):
            raise bad("START_PARAM_INVALID")
        return {"text": text, "start_parameter": parameter}
    if "web_app" in raw:
        web_app = raw["web_app"]
        if not isinstance(web_app, dict):
            raise bad(_BUTTON + 'Field "web_app" must be of type Object')
        url = _string(web_app, "url", _BUTTON)
        if not text:
            raise bad("SWITCH_PM_TEXT_EMPTY")
        if not url.lower().startswith("https://"):
            raise bad("SWITCH_WEBVIEW_URL_INVALID")
        return {"text": text, "web_app": {"url": url}}
    raise bad(_BUTTON + "InlineQueryResultsButton must have exactly one optional field")


def _cache_time(raw: Any) -> int:
    """The Bot API server's ``get_integer_arg(..., 300, 0, 86400)``: absent is 300, out of range is
    clamped, never refused."""
    try:
        value = int(raw) if raw not in (None, "") else 300
    except (TypeError, ValueError):
        value = 300
    return min(CACHE_TIME_MAX, max(0, value))


class InlineMethods(EmulatorState):
    """The Bot API side: answerInlineQuery."""

    def m_answerinlinequery(self, p: dict[str, Any]) -> bool:
        button = check_button(p)
        results = check_results(p.get("results"))
        qid = str(p.get("inline_query_id") or "")
        pending = self._inline.get(qid)
        if pending is None or pending.answered.done() or self.clock() - pending.issued > self.inline_ttl:
            raise bad(QUERY_INVALID)
        next_offset = str(p.get("next_offset") or "")
        if len(next_offset.encode()) > NEXT_OFFSET_MAX_BYTES:
            raise bad("NEXT_OFFSET_INVALID")
        answer = {
            "results": results,
            "next_offset": next_offset,
            "cache_time": _cache_time(p.get("cache_time")),
            "is_personal": p.get("is_personal") in (True, "true", "True", 1),
            "button": button,
        }
        self.inline_answers[qid] = answer
        pending.answered.set_result(answer)
        return True


class InlinePlayers(EmulatorState):
    """The user's side: typing an inline query, reading the answer, picking a result."""

    async def inline_query(
        self,
        user_id: int,
        query: str,
        *,
        chat: EmuChat | None = None,
        to_user: int | None = None,
        offset: str = "",
    ) -> str:
        """The user types ``@bot query`` in ``chat`` (a group or channel they are in), in their private
        chat with ``to_user``, or (neither given) in their own chat with the bot. Returns the query id,
        which the bot may answer once, within ``inline_ttl`` seconds. A bot without inline mode gets
        nothing: Telegram clients do not even send the query (``ValueError`` here)."""
        if not self.inline_mode:
            raise ValueError("the bot has no inline mode (BotFather /setinline)")
        if len(query) > QUERY_MAX:
            raise ValueError(f"a client sends at most {QUERY_MAX} characters of an inline query")
        user = self.user(user_id)
        if chat is not None:
            if user_id not in chat.members:
                raise ValueError(f"user {user_id} is not a member of chat {chat.id}")
            where, chat_type = chat.chat(), chat.type
        elif to_user is not None:
            where, chat_type = self.user(to_user).chat(), "private"
        else:
            where, chat_type = {**user.chat(), "_with_bot": True}, "sender"
        qid = str(secrets.randbits(63))
        answered: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._inline[qid] = InlineQuery(qid, user_id, query, where, chat_type, self.clock(), answered)
        await self._push(
            inline_query={
                "id": qid,
                "from": user.as_tg(),
                "query": query,
                "offset": offset,
                "chat_type": chat_type,
            }
        )
        return qid

    async def inline_answer(self, query_id: str, within: float = 5.0) -> dict[str, Any]:
        """The bot's answer to an inline query (``results``, ``next_offset``, ``cache_time``,
        ``is_personal``, ``button``), waiting for it (``TimeoutError`` after ``within`` seconds)."""
        pending = self._inline[query_id]
        return await asyncio.wait_for(asyncio.shield(pending.answered), within)

    async def choose(self, user_id: int, query_id: str, result_id: str) -> Sent:
        """The user picks a result of the bot's answer: it is posted in the chat they typed in, as their
        message ``via_bot``; with ``inline_feedback`` on, the bot gets a ``chosen_inline_result``."""
        pending = self._inline.get(query_id)
        if pending is None or not pending.answered.done():
            raise ValueError("the bot has not answered that inline query")
        if pending.user_id != user_id:
            raise ValueError("only the user who typed the query sees its results")
        result = next((r for r in pending.answered.result()["results"] if r["id"] == result_id), None)
        if result is None:
            raise LookupError(f"no result {result_id!r} in the bot's answer")
        user = self.user(user_id)
        where = {k: v for k, v in pending.chat.items() if not k.startswith("_")}
        with_bot = bool(pending.chat.get("_with_bot"))
        key = int(where["id"]) if where["type"] != "private" or with_bot else self._pair(user_id, where["id"])
        msg: dict[str, Any] = {
            "message_id": next(self._message_ids[key]),
            "date": int(time.time()),
            "chat": where if where["type"] != "private" else user.chat(),
            "from": user.as_tg(),
            "via_bot": self._bot_user(),
            "text": result["text"],
        }
        if result["entities"]:
            msg["entities"] = result["entities"]
        if result["reply_markup"]:
            msg["reply_markup"] = result["reply_markup"]
        if where["type"] == "private" and not with_bot:
            msg["_seen_by"] = [user_id, int(where["id"])]
        self._messages[(key, msg["message_id"])] = msg
        if with_bot:
            user.started = True
            await self._push(message={k: v for k, v in msg.items() if not k.startswith("_")})
        if self.inline_feedback:
            chosen: dict[str, Any] = {"result_id": result_id, "from": user.as_tg(), "query": pending.query}
            if result["reply_markup"]:
                chosen["inline_message_id"] = secrets.token_urlsafe(18)
            await self._push(chosen_inline_result=chosen)
        return Sent(msg, "inline")
