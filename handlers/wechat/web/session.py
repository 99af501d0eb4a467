"""Who is looking at a WeChat page: the openid WeChat's OAuth (``snsapi_base``, silent inside WeChat) gave
us, kept in a signed cookie so that one page visit costs one OAuth round trip, not one per page.

- ``Sessions.cookie(openid)`` / ``Sessions.openid(value)``: ``<openid>.<expiry>.<mac>``, HMAC-SHA256 with a
  key derived from the AppSecret, expiring after ``SESSION_TTL``. A forged, altered or expired value is no
  session (the page asks WeChat again).
- ``Sessions.state(path)`` / ``Sessions.check_state(state, path, browser)``: the OAuth ``state`` we send
  WeChat and expect back, bound to the page, expiring after ``STATE_TTL``, and bound to the browser we sent
  to WeChat: its nonce (``state_nonce``) is also set in that browser's ``STATE_COOKIE`` and must come back
  with it. A ``code`` arriving with any other state is not from a redirect we started for this browser
  (someone planting their own openid in the buyer's browser: they can have the shop make a genuine state
  and WeChat a code for themselves, but not put the nonce cookie in the buyer's browser), and is ignored.

Hand-written on ``hmac`` (a dozen lines) rather than a signing library: nothing else here needs one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable

SESSION_TTL = 2 * 3600  # seconds a page session lasts (the buyer then passes through OAuth again, unseen)
STATE_TTL = 600  # seconds between sending the buyer to OAuth and their return
COOKIE = "ks_wx"
STATE_COOKIE = "ks_wx_state"  # the nonce of the OAuth state this browser was sent to WeChat with
# <openid>.<expiry>.<mac>, ASCII only: a MAC of another alphabet could not be compared in constant time
_COOKIE = re.compile(r"([A-Za-z0-9_-]{1,64})\.([0-9]{1,12})\.([A-Za-z0-9]{43})")


class Sessions:
    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self._key = hashlib.sha256(b"keyshop wechat pages\x00" + secret.encode()).digest()
        self._clock = clock

    def cookie(self, openid: str) -> str:
        expiry = int(self._clock()) + SESSION_TTL
        body = f"{openid}.{expiry}"
        return f"{body}.{self._mac('s', body)}"

    def openid(self, value: str | None) -> str | None:
        """The openid of a valid, unexpired session cookie; None otherwise."""
        found = _COOKIE.fullmatch(value or "")
        if found is None:
            return None
        openid, expiry, mac = found.groups()
        if not hmac.compare_digest(mac, self._mac("s", f"{openid}.{expiry}")):
            return None
        return openid if int(expiry) > self._clock() else None

    def state(self, path: str) -> str:
        """An OAuth ``state`` for returning to ``path`` (WeChat allows 128 bytes of [a-zA-Z0-9])."""
        nonce = secrets.token_hex(8)
        expiry = int(self._clock()) + STATE_TTL
        return f"{nonce}{expiry:x}{self._mac('o', f'{nonce}.{expiry}.{path}')[:32]}"

    @staticmethod
    def state_nonce(state: str) -> str:
        """What the browser sent to WeChat with ``state`` keeps (in ``STATE_COOKIE``) to come back with it."""
        return state[:16]

    def check_state(self, state: str, path: str, browser: str | None) -> bool:
        """``state`` is one we made for ``path``, in time, and for this browser (``browser``: its
        ``STATE_COOKIE``)."""
        if not re.fullmatch(r"[0-9a-f]{16}[0-9a-f]{1,12}[A-Za-z0-9]{32}", state or ""):
            return False
        nonce, expiry_hex, mac = state[:16], state[16:-32], state[-32:]
        if not (browser and browser.isascii() and hmac.compare_digest(nonce, browser)):
            return False
        expiry = int(expiry_hex, 16)
        if expiry < self._clock():
            return False
        return hmac.compare_digest(mac, self._mac("o", f"{nonce}.{expiry}.{path}")[:32])

    def _mac(self, purpose: str, body: str) -> str:
        digest = hmac.new(self._key, f"{purpose}:{body}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=").replace("-", "0").replace("_", "1")
