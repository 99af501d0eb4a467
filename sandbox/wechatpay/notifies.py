"""Notifications to the shop: signed, AES-256-GCM encrypted, retried on WeChat Pay's schedule, each attempt
recorded; and the hostile controls that spoil the next one.

The first attempt is made when the event happens (``pay``, a refund settling) and awaited, so a test knows
the shop has had it. A failure (anything but 200/204 within ``notify_timeout``) schedules the next retry on
the platform's clock: ``advance(s)`` then ``await deliver_due()`` makes every retry that fell due (each
recorded at the time it was due); ``await flush()`` makes each pending notification's next retry now,
without moving the clock (for a shop on the real clock, which would find an advanced timestamp stale)."""

from __future__ import annotations

import base64
import functools
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from sandbox.wechatpay import crypto
from sandbox.wechatpay.state import PlatformState

OK_STATUSES = (200, 204)
DELIVERIES = ("first", "retry")  # the attempts that count; duplicates and replays are extra


@dataclass
class Attempt:
    at: float  # platform time
    status: int | None  # None: no answer in time, or no connection
    kind: str  # first | retry | duplicate | replay
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES


@dataclass
class Notice:
    """One notification and what became of it."""

    id: str
    event_type: str
    url: str
    body: bytes  # the envelope as sent (the same on every attempt)
    resource: dict[str, Any]  # the plaintext inside, as sent (after any fault)
    faults: dict[str, Any]
    out_trade_no: str
    out_refund_no: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    due: float | None = None  # when the next retry falls due; None: delivered, given up, or dropped
    first: tuple[dict[str, str], bytes] | None = None  # what the first attempt sent (a replay resends it)

    @property
    def delivered(self) -> bool:
        return any(a.ok for a in self.attempts if a.kind in DELIVERIES)

    @property
    def dropped(self) -> bool:
        return "drop" in self.faults

    @property
    def given_up(self) -> bool:
        return bool(self.attempts) and not self.delivered and self.due is None

    def delays(self) -> list[float]:
        """Seconds between consecutive deliveries (first and retries): WeChat Pay's schedule."""
        times = [a.at for a in self.attempts if a.kind in DELIVERIES]
        return [b - a for a, b in itertools.pairwise(times)]


class Notifier(PlatformState):
    def __post_init__(self) -> None:
        super().__post_init__()
        self.notifies: list[Notice] = []
        self._faults: dict[str, Any] = {}
        self._session: aiohttp.ClientSession | None = None

    # -- hostile controls: each spoils the next notification (all its attempts), then is spent --

    def drop_next_notify(self) -> None:
        """Never send it: only a query shows the shop the payment (or refund)."""
        self._faults["drop"] = True

    def duplicate_next_notify(self) -> None:
        """Send it twice at once (same id, both signed)."""
        self._faults["duplicate"] = True

    def tamper_next_notify(self, what: str = "signature") -> None:
        """``signature``: the signature is not the body's; ``signtest``: a ``WECHATPAY/SIGNTEST/``
        probe signature (WeChat Pay sends such to check the shop refuses them); ``ciphertext``: correctly
        signed, but the resource does not decrypt."""
        if what not in ("signature", "signtest", "ciphertext"):
            raise ValueError("what: signature, signtest or ciphertext")
        self._faults[what] = True

    def backdate_next_notify(self, seconds: float = 600.0) -> None:
        """Sign it with a timestamp ``seconds`` in the past."""
        self._faults["backdate"] = seconds

    def change_next_notify_amount(self, total: int) -> None:
        """A genuine, signed notification saying ``total`` was paid instead of the order's amount."""
        self._faults["amount"] = total

    def sign_next_notify_badly(self, how: str = "wrong_key") -> None:
        """``wrong_key``: signed by another key under our key id; ``unknown_serial``: by our key, under an
        id the shop does not know."""
        if how not in ("wrong_key", "unknown_serial"):
            raise ValueError("how: wrong_key or unknown_serial")
        self._faults[how] = True

    def next_notify_for_another_merchant(self) -> None:
        """Signed and encrypted for us, but the transaction inside is another merchant's and AppID's."""
        self._faults["foreign"] = True

    # -- delivery --

    async def deliver_due(self) -> int:
        """Make every retry due by the platform's clock, in time order; how many were made."""
        made = 0
        while True:
            pending = [n for n in self.notifies if n.due is not None and n.due <= self.now()]
            if not pending:
                return made
            notice = min(pending, key=lambda n: n.due or 0.0)
            await self._attempt(notice, "retry", notice.due or self.now())
            made += 1

    async def flush(self) -> int:
        """Make each pending notification's next retry now, whatever its schedule; how many were made."""
        pending = [n for n in self.notifies if n.due is not None]
        for notice in pending:
            await self._attempt(notice, "retry", self.now())
        return len(pending)

    async def replay(self, notice: Notice) -> int | None:
        """Post the first attempt of ``notice`` again, byte for byte (an old request replayed); the status."""
        if notice.first is None:
            raise ValueError("that notification was never sent")
        headers, body = notice.first
        attempt = await self._post(notice.url, headers, body, "replay")
        notice.attempts.append(attempt)
        return attempt.status

    def sign_notify(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """Headers that sign ``body`` as WeChat Pay would (for tests posting bodies of their own)."""
        stamp = int(self.now()) if timestamp is None else timestamp
        return crypto.signed_headers(self.key, self.public_key_id, body, stamp)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _notify(
        self,
        event_type: str,
        summary: str,
        resource: dict[str, Any],
        url: str,
        out_trade_no: str,
        out_refund_no: str | None = None,
    ) -> Notice:
        faults, self._faults = self._faults, {}
        resource = _spoiled(resource, faults)
        kind = "refund" if event_type.startswith("REFUND.") else "transaction"
        sealed = crypto.seal(self.api_v3_key, json.dumps(resource, ensure_ascii=False).encode(), kind)
        if faults.get("ciphertext"):
            sealed["ciphertext"] = _flipped(sealed["ciphertext"])
        notice_id = f"EV-{self._stamp('%Y%m%d%H%M%S')}{self._serial()[-5:]}"
        envelope = {
            "id": notice_id,
            "create_time": self.rfc3339(self.now()),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": {"original_type": kind, **sealed},
        }
        body = json.dumps(envelope, ensure_ascii=False).encode()
        notice = Notice(notice_id, event_type, url, body, resource, faults, out_trade_no, out_refund_no)
        self.notifies.append(notice)
        if notice.dropped:
            return notice
        await self._attempt(notice, "first", self.now())
        if faults.get("duplicate"):
            await self._attempt(notice, "duplicate", self.now())
        return notice

    def _headers(self, notice: Notice) -> dict[str, str]:
        faults = notice.faults
        stamp = int(self.now() - faults.get("backdate", 0.0))
        key, serial = self.key, self.public_key_id
        if faults.get("wrong_key"):
            key = _stranger_key()
        if faults.get("unknown_serial"):
            serial = "PUB_KEY_ID_0114UNKNOWN0000000000"
        signed_body = notice.body + b" " if faults.get("signature") else notice.body
        headers = crypto.signed_headers(key, serial, signed_body, stamp)
        if faults.get("signtest"):
            headers["Wechatpay-Signature"] = "WECHATPAY/SIGNTEST/" + base64.b64encode(b"x" * 256).decode()
        return headers | {"Content-Type": "application/json", "User-Agent": "Mozilla/4.0"}

    async def _attempt(self, notice: Notice, kind: str, at: float) -> None:
        headers = self._headers(notice)
        attempt = await self._post(notice.url, headers, notice.body, kind)
        attempt.at = at
        notice.attempts.append(attempt)
        if kind == "first":
            notice.first = (headers, notice.body)
        if kind not in DELIVERIES:
            return
        if attempt.ok:
            notice.due = None
            return
        retries = sum(1 for a in notice.attempts if a.kind == "retry")
        schedule = self.retry_schedule
        notice.due = at + schedule[retries] if retries < len(schedule) else None

    async def _post(self, url: str, headers: dict[str, str], body: bytes, kind: str) -> Attempt:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=self.notify_timeout)
        try:
            async with self._session.post(url, data=body, headers=headers, timeout=timeout) as resp:
                await resp.read()
                return Attempt(self.now(), resp.status, kind)
        except (TimeoutError, aiohttp.ClientError) as e:
            return Attempt(self.now(), None, kind, type(e).__name__)


def _spoiled(resource: dict[str, Any], faults: dict[str, Any]) -> dict[str, Any]:
    resource = json.loads(json.dumps(resource))  # a copy, nested dicts included
    if "amount" in faults and isinstance(resource.get("amount"), dict):
        for key in ("total", "payer_total"):
            if key in resource["amount"]:
                resource["amount"][key] = faults["amount"]
    if faults.get("foreign"):
        resource |= {"mchid": "1900000000", "appid": "wx0000000000foreign"}
    return resource


def _flipped(ciphertext: str) -> str:
    raw = bytearray(base64.b64decode(ciphertext))
    raw[0] ^= 0xFF
    return base64.b64encode(bytes(raw)).decode("ascii")


@functools.cache
def _stranger_key() -> RSAPrivateKey:
    """A key that is not the platform's (made once: RSA key generation is slow)."""
    return crypto.new_key()
