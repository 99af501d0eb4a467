"""Playing the people on the other side: users write, tap buttons, open links to the bot, share contacts,
upload files, pay invoices (also forwarded ones), block the bot; people add the bot to groups and remove it,
join and leave them; group members and anonymous admins write in groups; channels post. Inline mode is
played by ``inline.InlinePlayers``."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.telegram.chats import GROUP_ANONYMOUS_BOT, EmuChat, EmuUser, Sent
from sandbox.telegram.inline import InlinePlayers
from sandbox.telegram.limits import DEEP_LINK_RE
from sandbox.telegram.payments import Payment


def _public(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if not k.startswith("_")}


def _command_entities(text: str) -> list[dict[str, Any]]:
    if not text.startswith("/"):
        return []
    return [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]


# A channel's administrator rights, as a ChatMemberAdministrator carries them (the bot posts in channels).
_CHANNEL_ADMIN_RIGHTS = {
    "can_be_edited": False,
    "is_anonymous": False,
    "can_manage_chat": True,
    "can_delete_messages": True,
    "can_manage_video_chats": True,
    "can_restrict_members": True,
    "can_promote_members": False,
    "can_change_info": True,
    "can_invite_users": True,
    "can_post_stories": False,
    "can_edit_stories": False,
    "can_delete_stories": False,
    "can_post_messages": True,
    "can_edit_messages": True,
}


class Players(InlinePlayers):
    def _user_message(self, user: EmuUser, chat: EmuChat | None = None, **content: Any) -> dict[str, Any]:
        chat_id = chat.id if chat else user.id
        if chat is None:
            user.started = True  # writing to the bot opens the private chat
        elif user.id not in chat.members:
            raise ValueError(f"user {user.id} is not a member of chat {chat.id}")
        msg = {
            "message_id": next(self._message_ids[chat_id]),
            "date": int(time.time()),
            "chat": chat.chat() if chat else user.chat(),
            "from": user.as_tg(),
            **content,
        }
        self._messages[(chat_id, int(msg["message_id"]))] = msg
        return msg

    async def send_text(
        self, user_id: int, text: str, *, chat: EmuChat | None = None, deleted: bool = False
    ) -> dict[str, Any]:
        """The user writes ``text`` to the bot, or in ``chat`` (a group the user is a member of; a group
        the bot is not in keeps the message, and the bot hears nothing). ``deleted``: the message is gone
        before the bot answers it (its author deleted it, or a group's moderation bot that removes every
        command): the bot still gets the update, but a reply to it is refused unless sent without one."""
        content: dict[str, Any] = {"text": text}
        if entities := _command_entities(text):
            content["entities"] = entities
        message = self._user_message(self.user(user_id), chat, **content)
        if chat is not None and not chat.bot_is_member:
            return {"message": message}
        if deleted:
            message["_deleted"] = True
        return await self._push(message=_public(message))

    async def send_anonymous(self, chat: EmuChat, text: str) -> dict[str, Any]:
        """An anonymous admin writes in ``chat``: ``from`` is GroupAnonymousBot, ``sender_chat`` the group."""
        if chat.type == "channel":
            raise ValueError("channels have no anonymous admins; use channel_post")
        content: dict[str, Any] = {"text": text}
        if entities := _command_entities(text):
            content["entities"] = entities
        msg = {
            "message_id": next(self._message_ids[chat.id]),
            "date": int(time.time()),
            "chat": chat.chat(),
            "from": dict(GROUP_ANONYMOUS_BOT),
            "sender_chat": chat.chat(),
            **content,
        }
        self._messages[(chat.id, msg["message_id"])] = msg
        return await self._push(message=msg)

    async def channel_post(self, chat: EmuChat, text: str) -> dict[str, Any]:
        """A post in a channel the bot is in: a ``channel_post`` update, with no ``from``."""
        if chat.type != "channel":
            raise ValueError("channel_post needs a channel")
        msg: dict[str, Any] = {
            "message_id": next(self._message_ids[chat.id]),
            "date": int(time.time()),
            "chat": chat.chat(),
            "sender_chat": chat.chat(),
            "text": text,
        }
        self._messages[(chat.id, msg["message_id"])] = msg
        return await self._push(channel_post=msg)

    async def open_link(self, user_id: int, url: str) -> dict[str, Any]:
        """The user opens a link to the bot (``https://t.me/<bot>?start=<payload>``, ``tg://resolve?domain=
        <bot>&start=<payload>``), say from a URL button in a group: Telegram opens their private chat with
        the bot and sends ``/start <payload>`` for them (a plain ``/start`` when the payload is not 1-64 of
        ``A-Z a-z 0-9 _ -``: clients drop it). Pressing Start also undoes a block."""
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        if parts.scheme in ("http", "https", "") and (parts.hostname or "") in ("t.me", "telegram.me"):
            username = parts.path.strip("/")
        elif parts.scheme == "tg" and parts.netloc == "resolve":
            username = query.get("domain", [""])[0]
        else:
            raise ValueError(f"not a link Telegram opens as a chat: {url!r}")
        if username.lower() != self.bot_username.lower():
            raise ValueError(f"{url!r} is not a link to this bot")
        payload = query.get("start", [""])[0]
        self.user(user_id).blocked_bot = False
        text = f"/start {payload}" if DEEP_LINK_RE.fullmatch(payload) else "/start"
        return await self.send_text(user_id, text)

    # ------------------------------------------------------------------ groups: the bot and the members

    def _member(self, status: str, user: dict[str, Any]) -> dict[str, Any]:
        extra: dict[str, Any] = {"until_date": 0} if status == "kicked" else {}
        if status == "administrator":
            extra = _CHANNEL_ADMIN_RIGHTS
        return {"status": status, "user": user, **extra}

    async def _service(self, chat: EmuChat, by: EmuUser, **content: Any) -> None:
        """A service message in a group (someone joined, left, added the bot): the bot gets it while it
        is a member (service messages pass privacy mode)."""
        msg = {
            "message_id": next(self._message_ids[chat.id]),
            "date": int(time.time()),
            "chat": chat.chat(),
            "from": by.as_tg(),
            **content,
        }
        self._messages[(chat.id, msg["message_id"])] = msg
        if chat.bot_is_member and chat.type != "channel":
            await self._push(message=msg)

    async def _bot_status(self, chat: EmuChat, by: EmuUser, old: str, new: str) -> None:
        bot = self._bot_user()
        await self._push(
            my_chat_member={
                "chat": chat.chat(),
                "from": by.as_tg(),
                "date": int(time.time()),
                "old_chat_member": self._member(old, bot),
                "new_chat_member": self._member(new, bot),
            }
        )

    async def add_bot(self, chat: EmuChat, by: int) -> None:
        """``by`` adds the bot to ``chat``: a ``my_chat_member`` update (left → member; administrator in
        a channel, where only its admins add bots) and, in a group, the service message."""
        if by not in (chat.admins if chat.type == "channel" else chat.members):
            raise ValueError(f"user {by} can't add members to chat {chat.id}")
        if chat.bot_is_member:
            return
        chat.bot_is_member = True
        who = self.user(by)
        await self._bot_status(chat, who, "left", "administrator" if chat.type == "channel" else "member")
        await self._service(chat, who, new_chat_members=[self._bot_user()])

    async def remove_bot(self, chat: EmuChat, by: int) -> None:
        """``by`` (an admin) removes the bot: from now on it may not write there (403) and gets no updates
        from there; its ``my_chat_member`` says ``kicked``."""
        if by not in chat.admins:
            raise ValueError(f"user {by} is not an admin of chat {chat.id}")
        if not chat.bot_is_member:
            return
        who = self.user(by)
        await self._service(chat, who, left_chat_member=self._bot_user())
        chat.bot_is_member = False
        await self._bot_status(chat, who, "administrator" if chat.type == "channel" else "member", "kicked")

    async def join(self, chat: EmuChat, user_id: int) -> None:
        """The user joins ``chat`` (the bot, if it is there, sees the service message)."""
        user = self.user(user_id)
        if user_id in chat.members:
            return
        chat.members.add(user_id)
        await self._service(chat, user, new_chat_members=[user.as_tg()])

    async def leave(self, chat: EmuChat, user_id: int) -> None:
        user = self.user(user_id)
        if user_id not in chat.members:
            return
        chat.members.discard(user_id)
        chat.admins.discard(user_id)
        await self._service(chat, user, left_chat_member=user.as_tg())

    async def share_contact(self, user_id: int, phone: str) -> dict[str, Any]:
        user = self.user(user_id)
        contact = {"phone_number": phone, "first_name": user.first_name, "user_id": user.id}
        return await self._push(message=self._user_message(user, contact=contact))

    async def tap(self, user_id: int, sent: Sent | dict[str, Any], callback_data: str) -> str:
        """Tap an inline button: a callback query about that message. Returns the query id, which the bot
        may answer once, within ``callback_ttl`` seconds."""
        user = self.user(user_id)
        message = sent.message if isinstance(sent, Sent) else sent
        qid = str(secrets.randbits(63))
        self._queries[qid] = self.clock()
        await self._push(
            callback_query={
                "id": qid,
                "from": user.as_tg(),
                "message": _public(message),
                "chat_instance": str(message.get("chat", {}).get("id", user.id)),
                "data": callback_data,
            }
        )
        return qid

    def _can_see(self, user_id: int, message: dict[str, Any]) -> bool:
        chat = message.get("chat") or {}
        if user_id in message.get("_seen_by", ()):
            return True
        if chat.get("type") == "private":
            return bool(chat.get("id") == user_id and not message.get("_forwarded"))
        group = self.chats.get(int(chat.get("id", 0)))
        return group is not None and user_id in group.members

    def forward(self, from_user: int, message: Sent, to_user: int) -> Sent:
        """``from_user`` forwards an invoice they can see to ``to_user``'s chat with them. Telegram gives the
        copy a Pay button when the invoice's ``start_parameter`` is empty (anyone who sees it may pay), else a
        URL button that deep-links to the bot with that parameter."""
        original = message.message
        inv = original.get("invoice")
        if not inv:
            raise ValueError("only invoices are forwarded by this emulator")
        if not self._can_see(from_user, original):
            raise ValueError(f"user {from_user} can't see that message")
        sender, receiver = self.user(from_user), self.user(to_user)
        if inv["start_parameter"]:
            url = f"https://t.me/{self.bot_username}?start={inv['start_parameter']}"
            button: dict[str, Any] = {"text": inv["title"], "url": url}
        else:
            button = {"text": f"Pay {inv['total_amount']} {inv['currency']}", "pay": True}
        copy = {
            "message_id": next(self._message_ids[self._pair(from_user, to_user)]),
            "date": int(time.time()),
            "chat": sender.chat(),
            "from": sender.as_tg(),
            "forward_origin": {
                "type": "user",
                "date": original["date"],
                "sender_user": {"id": self.bot_id, "is_bot": True, "first_name": "keyshop"},
            },
            "invoice": dict(inv),
            "reply_markup": {"inline_keyboard": [[button]]},
            "_payload": original["_payload"],
            "_forwarded": True,
            "_seen_by": [receiver.id, sender.id],
        }
        return Sent(copy, "forwardMessage")

    async def pay(self, user_id: int, invoice: Sent, *, amount: int | None = None) -> dict[str, Any]:
        """Pay an invoice the way a Telegram client does: pre-checkout query first, and only if the bot
        answers ok within the time limit, the charge and a successful_payment message in the payer's chat
        with the bot. Returns a report (``paid``, ``charge_id`` or ``error``)."""
        user = self.user(user_id)
        inv = invoice.message.get("invoice")
        if not inv:
            raise ValueError("that message is not an invoice")
        if not self._can_see(user_id, invoice.message):
            raise ValueError(f"user {user_id} can't see that invoice")
        markup = invoice.message.get("reply_markup") or {}
        if invoice.message.get("_forwarded") and not any(
            b.get("pay") for row in markup.get("inline_keyboard", []) for b in row
        ):
            return {"paid": False, "error": "not payable: the forwarded invoice has no Pay button"}
        total = inv["total_amount"] if amount is None else amount
        payload = invoice.message["_payload"]
        qid = str(secrets.randbits(63))
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pre_checkout[qid] = (self.clock(), fut)
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
        if answer.get("late"):  # answered, but after the deadline: Telegram refused it, nothing is charged
            return {"paid": False, "error": "timeout"}
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
            if entities := _command_entities(caption):
                content["caption_entities"] = entities
        return await self._push(message=self._user_message(user, **content))

    def block(self, user_id: int, blocked: bool = True) -> None:
        self.user(user_id).blocked_bot = blocked

    def fail_next(self, method: str, code: int, retry_after: int | None = None, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` fail with ``code`` (429 + ``retry_after``, 500, 403 as
        for a user who blocked the bot...)."""
        for _ in range(times):
            self.faults.append((method, code, retry_after))

    def stall_next(self, method: str, seconds: float, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` take effect but answer only after ``seconds``: a slow
        network. A client that gives up sooner sees a timeout for a call that did happen (an invoice that
        reached the chat all the same)."""
        for _ in range(times):
            self.stalls.append((method, seconds))
