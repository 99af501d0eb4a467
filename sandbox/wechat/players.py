"""Playing WeChat users: each action pushes signed XML to the shop's callback as WeChat does — in the
account's mode (plaintext, compatible or safe), waiting ``push_timeout`` seconds, retrying the same message
up to ``push_attempts`` times in all — and records what the user saw (``../shared/WECHAT.md``, "Inbound").

Opening the customer-service window is part of each action: a message opens the 48-hour window with its
five messages, a menu tap, follow or scan the one-minute window with three (``limits``)."""

from __future__ import annotations

import hashlib
import itertools
import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import aiohttp
from wechatpy.crypto import WeChatCrypto

from sandbox.wechat.state import NOTICE, EmulatorState, Received


@dataclass
class Push:
    """What one push came to: how many attempts WeChat made, the text the user saw (None: nothing, as for
    ``success`` or an empty body) and whether it ended in WeChat's "service unavailable" notice."""

    attempts: int
    seen: str | None
    failed: bool = False


class InvalidReply(Exception):
    """The shop answered something WeChat does not accept as a passive reply."""


def signature(*parts: str) -> str:
    """WeChat's sha1 over the sorted, joined parts (token, timestamp, nonce[, encrypted body])."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # noqa: S324 - WeChat's scheme


def cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


class Players(EmulatorState):
    _msg_ids = itertools.count(24_000_000_000_000_001)
    _session: aiohttp.ClientSession | None = None

    def follower(self, openid: str) -> None:
        """``openid`` already follows the account (no push, no window): for tests that start mid-story."""
        self.user(openid).subscribed = True

    async def send_text(self, openid: str, text: str) -> Push:
        """The user writes ``text`` (a follower only: WeChat lets no one else write to an account)."""
        if not self.user(openid).subscribed:
            raise ValueError(f"{openid} does not follow the account")
        self.open_window(openid, "message")
        fields = {"MsgType": "text", "Content": text, "MsgId": str(next(self._msg_ids))}
        return await self._push(openid, fields)

    async def click(self, openid: str, key: str) -> Push:
        """The user taps a menu button of type ``click`` with ``key``."""
        if not self.user(openid).subscribed:
            raise ValueError(f"{openid} does not follow the account")
        self.open_window(openid, "event")
        return await self._push(openid, {"MsgType": "event", "Event": "CLICK", "EventKey": key})

    async def subscribe(self, openid: str, scene: str | None = None) -> Push:
        """The user follows, through a parametric QR code when ``scene`` is given (``qrscene_<scene>``)."""
        self.user(openid).subscribed = True
        self.open_window(openid, "event")
        fields = {"MsgType": "event", "Event": "subscribe"}
        if scene is not None:
            fields.update(EventKey=f"qrscene_{scene}", Ticket=self._ticket(scene))
        return await self._push(openid, fields)

    async def scan(self, openid: str, scene: str) -> Push:
        """A follower scans a parametric QR code (a non-follower would ``subscribe`` with the scene)."""
        if not self.user(openid).subscribed:
            raise ValueError(f"{openid} does not follow the account: use subscribe(openid, scene)")
        self.open_window(openid, "event")
        fields = {"MsgType": "event", "Event": "SCAN", "EventKey": scene, "Ticket": self._ticket(scene)}
        return await self._push(openid, fields)

    async def unsubscribe(self, openid: str) -> Push:
        """The user unfollows: the window closes; WeChat shows nothing of any reply."""
        user = self.user(openid)
        user.subscribed = False
        user.grants.clear()
        return await self._push(openid, {"MsgType": "event", "Event": "unsubscribe", "EventKey": ""})

    async def verify_server(self) -> bool:
        """The check WeChat makes when the URL is saved: GET with ``echostr``, echoed back unchanged."""
        timestamp, nonce, echostr = str(int(self.now())), secrets.token_hex(8), secrets.token_hex(10)
        query = {
            "signature": signature(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": echostr,
        }
        try:
            async with self._client().get(self._url(), params=query, timeout=self._timeout()) as resp:
                return resp.status == 200 and (await resp.text()) == echostr
        except (TimeoutError, aiohttp.ClientError):
            return False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _ticket(self, scene: str) -> str:
        known = [t for t, (s, _) in self.qrcodes.items() if s == scene]
        return known[0] if known else "gQ" + hashlib.sha1(scene.encode()).hexdigest()[:30]  # noqa: S324 - a name

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def _url(self) -> str:
        if not self.callback_url:
            raise RuntimeError("no callback_url: set it to the shop's WeChat callback first")
        return self.callback_url

    def _timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self.push_timeout)

    def _crypto(self) -> WeChatCrypto:
        return WeChatCrypto(self.token, self.aes_key, self.appid)

    def _message(self, openid: str, fields: dict[str, str]) -> str:
        head = {"ToUserName": self.account_id, "FromUserName": openid, "CreateTime": str(int(self.now()))}
        return _xml({**head, **fields})

    def signed_push(self, openid: str, fields: dict[str, str]) -> tuple[dict[str, str], bytes]:
        """The query string and body WeChat posts for a push of ``fields`` from ``openid``, signed (and
        sealed) in the account's mode: what ``_push`` sends on each attempt, and what the benchmark fires."""
        plain = self._message(openid, fields)  # one message: the retries repeat its MsgId and CreateTime
        timestamp, nonce = str(int(self.now())), secrets.token_hex(8)
        query = {
            "signature": signature(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": openid,
        }
        body = plain
        if self.mode != "plain":
            sealed = ET.fromstring(self._crypto().encrypt_message(plain, nonce, timestamp))  # noqa: S314 - ours
            encrypted = sealed.findtext("Encrypt") or ""
            query.update(encrypt_type="aes", msg_signature=sealed.findtext("MsgSignature") or "")
            inner = f"<Encrypt>{cdata(encrypted)}</Encrypt>"
            if self.mode == "compat":
                body = plain.replace("</xml>", inner + "</xml>")
            else:
                body = f"<xml><ToUserName>{cdata(self.account_id)}</ToUserName>{inner}</xml>"
        return query, body.encode()

    async def _push(self, openid: str, fields: dict[str, str]) -> Push:
        query, body = self.signed_push(openid, fields)
        for attempt in range(1, self.push_attempts + 1):
            try:
                async with self._client().post(
                    self._url(),
                    params=query,
                    data=body,
                    headers={"Content-Type": "text/xml"},
                    timeout=self._timeout(),
                ) as resp:
                    if resp.status != 200:
                        continue
                    answer = await resp.text()
                seen = self.read_reply(openid, answer)
            except (TimeoutError, aiohttp.ClientError, InvalidReply):
                continue
            if seen is not None and self.user(openid).subscribed:
                self.delivered[openid].append(Received("reply", seen))
            return Push(attempt, seen if self.user(openid).subscribed else None)
        if self.user(openid).subscribed:
            self.delivered[openid].append(Received("notice", NOTICE))
            return Push(self.push_attempts, NOTICE, failed=True)
        return Push(self.push_attempts, None, failed=True)

    def read_reply(self, openid: str, answer: str) -> str | None:
        """The text a passive reply shows (``[type]`` for another message type), None for ``success`` or
        an empty body; ``InvalidReply`` for anything else WeChat would refuse."""
        answer = answer.strip()
        if answer in ("", "success"):
            return None
        root = _parse(answer)
        if root.find("Encrypt") is not None:
            if self.mode == "plain":
                raise InvalidReply("an encrypted reply in plaintext mode")
            try:
                decrypted = self._crypto().decrypt_message(
                    answer, root.findtext("MsgSignature"), root.findtext("TimeStamp"), root.findtext("Nonce")
                )
            except Exception as e:  # wechatpy raises several kinds for a bad signature or ciphertext
                raise InvalidReply(f"cannot decrypt: {e!r}") from e
            root = _parse(decrypted)
        elif self.mode == "safe":
            raise InvalidReply("a plaintext reply in safe mode")
        if root.findtext("ToUserName") != openid or root.findtext("FromUserName") != self.account_id:
            raise InvalidReply("the reply is not addressed to the user from the account")
        kind = root.findtext("MsgType")
        if kind == "text":
            return root.findtext("Content") or ""
        if not kind:
            raise InvalidReply("no MsgType")
        return f"[{kind}]"


def _parse(text: str) -> ET.Element:
    try:
        # the shop under test, not the internet; expat refuses external entities
        root = ET.fromstring(text)  # noqa: S314
    except ET.ParseError as e:
        raise InvalidReply("not XML") from e
    if root.tag != "xml":
        raise InvalidReply("not a WeChat XML message")
    return root


def _xml(fields: dict[str, str]) -> str:
    numbers = ("CreateTime", "MsgId")
    inner = "".join(f"<{k}>{v if k in numbers else cdata(v)}</{k}>" for k, v in fields.items())
    return f"<xml>{inner}</xml>"
