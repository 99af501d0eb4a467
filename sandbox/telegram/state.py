"""The emulator's state: who exists, what was sent where, the update queue, flood control, and the helpers the
Bot API methods (``api.py`` and its mixins) and the user-playing side (``players.py``) share."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.telegram.chats import CHAT_TYPES, EmuChat, EmuUser, Sent
from sandbox.telegram.errors import bad, forbidden
from sandbox.telegram.limits import Bucket, too_many
from sandbox.telegram.payments import STARS_MAX, Payment
from sandbox.telegram.webhook import Balancer, Webhook

if TYPE_CHECKING:
    from sandbox.telegram.inline import InlineQuery

# Telegram's default when a bot never chose: every update type but these.
NOT_BY_DEFAULT = {"chat_member", "message_reaction", "message_reaction_count"}


def is_private(chat: dict[str, Any]) -> bool:
    return chat["type"] == "private"


@dataclass
class EmulatorState:
    """The server's state. It serves one bot token (any well-formed one when ``token`` is None)."""

    token: str | None = None
    flood_limits: bool = True
    per_chat_rate: float = 1.0
    per_chat_burst: float = 3.0
    global_rate: float = 30.0
    group_rate: float = 20 / 60
    group_burst: float = 20.0
    pre_checkout_timeout: float = 10.0
    callback_ttl: float = 15.0
    # BotFather's /setinline and /setinlinefeedback (``inline``); off, as for a new bot
    inline_mode: bool = False
    inline_feedback: bool = False
    inline_ttl: float = 10.0
    # Seconds, for the deadlines Telegram keeps (callback and pre-checkout answers); tests may move it.
    clock: Callable[[], float] = time.monotonic
    stars_max: int = STARS_MAX
    webhook_retry_delays: tuple[float, ...] = (0.05, 0.2, 0.5, 1.0, 2.0)
    webhook_timeout: float = 10.0
    # Backends (``http://127.0.0.1:PORT``) of a load balancer in front of several bot instances, which
    # takes Telegram's calls to the webhook URL and passes each to one of them (``webhook.Balancer``);
    # None: the URL itself is called. Changed while running with ``balance_webhook``.
    webhook_backends: list[str] | None = None
    bot_id: int = 7_000_000_001
    bot_username: str = "keyshop_sandbox_bot"
    users: dict[int, EmuUser] = field(default_factory=dict)
    chats: dict[int, EmuChat] = field(default_factory=dict)
    sent: dict[int, list[Sent]] = field(default_factory=lambda: defaultdict(list))
    payments: dict[str, Payment] = field(default_factory=dict)
    commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # default scope, by language
    # other scopes: (scope key, language) -> commands (see ``BotApi._command_scope``)
    scoped_commands: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    callback_answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    keyboards: dict[int, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    faults: deque[tuple[str, int, int | None]] = field(default_factory=deque)
    stalls: deque[tuple[str, float]] = field(default_factory=deque)
    on_send: list[Callable[[int, Sent], None]] = field(default_factory=list)
    star_ledger: list[dict[str, Any]] = field(default_factory=list)
    inline_answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # inline query id -> answer
    # Every 429 the flood limits answered, as (chat id, retry_after): a bot that keeps Telegram's limits
    # leaves this empty (injected faults, ``fail_next``, are not counted).
    flood_refusals: list[tuple[int, int]] = field(default_factory=list)
    # Every update the webhook took, as (update id, the URL that answered 2xx: a backend's, if balanced).
    webhook_deliveries: list[tuple[int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = defaultdict(lambda: itertools.count(1))
        self._changed = asyncio.Condition()  # the update queue: long polls and webhook delivery wait on it
        # Who waits for a message in a chat (``wait_for``): woken by that chat's messages only.
        self._chat_waiters: dict[int, list[asyncio.Future[None]]] = defaultdict(list)
        # pre-checkout query id -> (when it was issued, by ``clock``; the payer's wait for the answer)
        self._pre_checkout: dict[str, tuple[float, asyncio.Future[dict[str, Any]]]] = {}
        self._queries: dict[str, float] = {}  # callback query id -> when it was issued (``clock``)
        self._inline: dict[str, InlineQuery] = {}  # inline query id -> the query (``inline``)
        self._chat_buckets: dict[int, Bucket] = {}
        self._group_buckets: dict[int, Bucket] = {}
        self._global = Bucket(self.global_rate, self.global_rate)
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._allowed_updates: list[str] | None = None
        self._webhook: Webhook | None = None
        self._balancer: Balancer | None = None
        self.balance_webhook(self.webhook_backends)
        self._webhook_task: asyncio.Task[None] | None = None
        self._last_token = self.token or ""
        self._closing = False

    async def shutdown(self) -> None:
        """Answer pending long polls now and stop webhook delivery, so the server can stop at once."""
        self._closing = True
        async with self._changed:
            self._changed.notify_all()
        await self._stop_webhook()

    def balance_webhook(self, backends: list[str] | None) -> None:
        """Put a load balancer with these backends in front of the webhook (None or []: none), from the
        next delivery on: a test may send a conversation's next update to another instance this way."""
        self._balancer = Balancer(list(backends)) if backends else None
        self.webhook_backends = self._balancer.backends if self._balancer else None

    async def _stop_webhook(self) -> None:
        task, self._webhook_task = self._webhook_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # ------------------------------------------------------------------ who exists

    def user(
        self,
        user_id: int,
        first_name: str = "Buyer",
        language_code: str | None = "en",
        *,
        username: str | None = None,
        started: bool = True,
    ) -> EmuUser:
        u = self.users.get(user_id)
        if u is None:
            u = self.users[user_id] = EmuUser(user_id, first_name, language_code, username, started=started)
        return u

    def group(
        self,
        chat_id: int,
        title: str = "Group",
        *,
        members: tuple[int, ...] | list[int] = (),
        admins: tuple[int, ...] | list[int] = (),
        type: str = "supergroup",
        bot_is_member: bool = True,
        username: str | None = None,
    ) -> EmuChat:
        """A group, supergroup or channel (``type``) with these members; ids are negative as in Telegram."""
        if type not in CHAT_TYPES:
            raise ValueError(f"chat type must be one of {CHAT_TYPES}")
        if chat_id >= 0:
            raise ValueError("group and channel ids are negative")
        chat = self.chats.get(chat_id)
        if chat is None:
            chat = self.chats[chat_id] = EmuChat(chat_id, type, title, bot_is_member=bot_is_member)
            chat.username = username
        for uid in (*members, *admins):
            self.user(uid)
            chat.members.add(uid)
        chat.admins.update(admins)
        return chat

    def channel(self, chat_id: int, title: str = "Channel", **kw: Any) -> EmuChat:
        return self.group(chat_id, title, type="channel", **kw)

    def messages(self, chat_id: int) -> list[Sent]:
        return list(self.sent.get(chat_id, []))

    def history(self, chat_id: int) -> list[dict[str, Any]]:
        """Every message still in the chat, the users' and the bot's (deleted ones gone), oldest first."""
        return [
            m
            for (cid, _), m in sorted(self._messages.items(), key=lambda kv: kv[0][1])
            if cid == chat_id
            if not m.get("_deleted")
        ]

    async def wait_for(
        self,
        chat_id: int,
        predicate: Callable[[Sent], bool] = lambda s: True,
        *,
        after: int = 0,
        within: float = 5.0,
    ) -> Sent:
        """The first message to ``chat_id`` (from index ``after``) matching ``predicate``, waiting for it
        (``TimeoutError`` after ``within`` seconds). Only messages to that chat wake the waiter, so a
        thousand buyers waiting each for their own chat cost one wake-up per message, not a thousand."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            found = next((s for s in self.sent.get(chat_id, [])[after:] if predicate(s)), None)
            if found is not None:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no such message to chat {chat_id} within {within} s")
            woken: asyncio.Future[None] = loop.create_future()
            waiters = self._chat_waiters[chat_id]
            waiters.append(woken)
            try:
                await asyncio.wait_for(woken, remaining)
            finally:
                if woken in waiters:
                    waiters.remove(woken)

    # ------------------------------------------------------------------ updates

    async def _push(self, **update: Any) -> dict[str, Any]:
        upd = {"update_id": next(self._update_ids), **update}
        async with self._changed:
            self._updates.append(upd)
            self._changed.notify_all()
        return upd

    def _wanted(self, update: dict[str, Any]) -> bool:
        kind = next(k for k in update if k != "update_id")
        if self._allowed_updates:
            return kind in self._allowed_updates
        return kind not in NOT_BY_DEFAULT

    def _pending(self) -> list[dict[str, Any]]:
        """Updates waiting for the bot; those of types it did not subscribe to are dropped (as Telegram)."""
        self._updates = [u for u in self._updates if self._wanted(u)]
        return self._updates

    # ------------------------------------------------------------------ where the bot sends

    def _flood(self, chat_id: int) -> None:
        if not self.flood_limits:
            return
        buckets = [
            self._global,
            self._chat_buckets.setdefault(chat_id, Bucket(self.per_chat_rate, self.per_chat_burst)),
        ]
        chat = self.chats.get(chat_id)
        if chat is not None and chat.type != "channel":
            buckets.append(self._group_buckets.setdefault(chat_id, Bucket(self.group_rate, self.group_burst)))
        wait = max(b.wait() for b in buckets)
        if wait > 0:
            refusal = too_many(wait)
            self.flood_refusals.append((chat_id, refusal.retry_after or 1))
            raise refusal
        for b in buckets:
            b.take()

    def _target(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The chat a method addresses: its id and its Chat object, or the error Telegram gives."""
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise bad("chat_id is empty")
        if isinstance(raw, str) and raw.startswith("@"):
            chat = next((c for c in self.chats.values() if c.username == raw[1:]), None)
            if chat is None:
                raise bad("chat not found")
            raw = chat.id
        try:
            chat_id = int(raw)
        except (TypeError, ValueError):
            raise bad("chat not found") from None
        if chat_id > 0:
            user = self.users.get(chat_id)
            if user is None:
                raise bad("chat not found")
            if user.blocked_bot:
                raise forbidden("bot was blocked by the user")
            if not user.started:
                raise forbidden("bot can't initiate conversation with a user")
            return chat_id, user.chat()
        group = self.chats.get(chat_id)
        if group is None:
            raise bad("chat not found")
        if not group.bot_is_member:
            raise forbidden(f"bot is not a member of the {group.kind} chat")
        return chat_id, group.chat()

    def _bot_user(self) -> dict[str, Any]:
        """The bot as a User object (a message's ``from``, ``via_bot``, a chat member)."""
        return {"id": self.bot_id, "is_bot": True, "first_name": "keyshop", "username": self.bot_username}

    @staticmethod
    def _pair(a: int, b: int) -> int:
        """A key for the private chat of two users (the bot is in neither): its message ids."""
        return min(a, b) * 10**12 + max(a, b)

    def _replied(self, chat_id: int, params: dict[str, Any]) -> dict[str, Any] | None:
        """The message a send replies to (``reply_parameters``, or the older ``reply_to_message_id``) as the
        sent message carries it. One that is gone (deleted, or never there) refuses the send, as Telegram
        does, unless ``allow_sending_without_reply``: then the message goes out as no reply."""
        rp = params.get("reply_parameters")
        rp = rp if isinstance(rp, dict) else params
        raw = rp.get("message_id") if rp is not params else params.get("reply_to_message_id")
        if raw is None or raw == "":
            return None
        try:
            key = (int(rp.get("chat_id") or chat_id), int(raw))
        except (TypeError, ValueError):
            raise bad("message to be replied not found") from None
        msg = self._messages.get(key)
        if msg is None or msg.get("_deleted"):
            if rp.get("allow_sending_without_reply") in (True, "true", "True", 1):
                return None
            raise bad("message to be replied not found")
        return {k: v for k, v in msg.items() if not k.startswith("_")}

    def _bot_message(self, chat_id: int, chat: dict[str, Any], **content: Any) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "message_id": next(self._message_ids[chat_id]),
            "date": int(time.time()),
            "chat": chat,
        }
        if chat["type"] == "channel":
            msg["sender_chat"] = chat
        else:
            msg["from"] = self._bot_user()
        msg.update({k: v for k, v in content.items() if v is not None and v != []})
        msg["_by_bot"] = True
        self._messages[(chat_id, msg["message_id"])] = msg
        return msg

    def _apply_markup(
        self, chat_id: int, msg: dict[str, Any], markup: Any, kind: str
    ) -> dict[str, Any] | None:
        """Inline keyboards belong to the message; reply keyboards (their removal, ForceReply) to the chat.
        Returns the latter, for ``Sent.reply_keyboard``."""
        if kind == "inline":
            msg["reply_markup"] = markup
            return None
        if kind == "none":
            return None
        if kind == "keyboard":
            self.keyboards[chat_id] = markup
        elif kind == "remove":
            self.keyboards.pop(chat_id, None)
        return dict(markup)

    def _set_inline(self, msg: dict[str, Any], markup: Any) -> None:
        if markup:
            msg["reply_markup"] = markup
        else:
            msg.pop("reply_markup", None)  # an edit without reply_markup removes the inline keyboard

    def _record(
        self, chat_id: int, method: str, message: dict[str, Any], reply_keyboard: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        sent = Sent(message, method, reply_keyboard)
        self.sent[chat_id].append(sent)
        for cb in self.on_send:
            cb(chat_id, sent)
        for woken in self._chat_waiters.pop(chat_id, ()):
            if not woken.done():
                woken.set_result(None)
        return message

    async def _notify(self, message: dict[str, Any]) -> dict[str, Any]:
        """The Message as the bot gets it back (without the emulator's notes); ``_record`` woke the chat's
        waiters already."""
        return {k: v for k, v in message.items() if not k.startswith("_")}
