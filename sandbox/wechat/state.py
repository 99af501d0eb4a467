"""The emulator's state: the account's credentials, its users and their windows, the tokens, the daily
quotas, and what every user got. Shared by the API (``api.py``) and the user-playing side (``players.py``)."""

from __future__ import annotations

import secrets
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.wechat import errors as e
from sandbox.wechat.limits import Grant, grant

# Calls a day per endpoint before 45009 (WeChat's defaults for an ordinary account, roughly; tests set
# small ones through ``daily_quotas``). An endpoint missing here has no quota.
DEFAULT_DAILY_QUOTAS = {
    "/cgi-bin/token": 2000,
    "/cgi-bin/stable_token": 10_000,
    "/cgi-bin/message/custom/send": 500_000,
    "/cgi-bin/message/template/send": 100_000,
    "/cgi-bin/menu/create": 1000,
    "/cgi-bin/qrcode/create": 100_000,
}
MODES = ("plain", "compat", "safe")
NOTICE = "该公众号暂时无法提供服务"
TOKEN_REFUSED = "invalid credential, access_token is invalid or not latest"  # noqa: S105 - an error message


@dataclass
class Received:
    """Something the user saw in the chat: a passive ``reply``, a ``custom`` (客服) message, a ``template``
    message (``text`` is its fields, one ``key: value`` a line) or WeChat's own ``notice``."""

    via: str
    text: str
    msgtype: str = "text"
    template_id: str | None = None
    data: dict[str, str] | None = None
    url: str | None = None


@dataclass
class Token:
    value: str
    expires_at: float
    kind: str  # "stable" | "legacy"
    revoked_at: float | None = None


@dataclass
class WxUser:
    openid: str
    subscribed: bool = False
    grants: dict[str, Grant] = field(default_factory=dict)


@dataclass
class EmulatorState:
    """The account the emulator plays WeChat for. ``mode`` is the callback's encryption mode (``plain``,
    ``compat`` or ``safe``); ``callback_url`` is where pushes go (set it once the shop listens)."""

    appid: str = "wx0000000000sandbox"
    secret: str = "sandbox-app-secret-0000000000000"  # noqa: S105 - the sandbox's own
    token: str = "sandboxtoken"  # noqa: S105 - the callback token (Token in the console)
    aes_key: str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # EncodingAESKey: 43 characters
    account_id: str = "gh_sandbox00001"  # the account's original id, ToUserName of every push
    mode: str = "plain"
    callback_url: str | None = None
    push_timeout: float = 5.0
    push_attempts: int = 3  # in all (WECHAT.md: whether 3 or 1+3 is unverified)
    token_ttl: float = 7200.0
    stable_renew_early: float = 300.0  # a stable_token call this close to expiry gets the next token
    legacy_overlap: float = 300.0  # how long the legacy token's predecessor still works
    force_refresh_per_day: int = 20
    oauth_code_ttl: float = 300.0
    daily_quotas: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_DAILY_QUOTAS))
    # epoch seconds; ``advance`` moves it for tests (windows, token expiry, quotas' days)
    clock: Callable[[], float] = time.time
    offset: float = 0.0
    users: dict[str, WxUser] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    delivered: dict[str, list[Received]] = field(default_factory=lambda: defaultdict(list))
    calls: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    force_refreshes: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    menu: list[dict[str, Any]] | None = None
    qrcodes: dict[str, tuple[str, float | None]] = field(default_factory=dict)  # ticket -> (scene, expiry)
    templates: set[str] | None = None  # template ids the account has; None: any
    oauth_codes: dict[str, tuple[str, float]] = field(default_factory=dict)  # code -> (openid, expiry)
    # The WeChat user whose phone opens the shop's pages (OAuth's authorize answers for them), and the host
    # the account registered for OAuth (网页授权域名; None: any host, as an unconfigured emulator).
    browser_user: str | None = None
    oauth_domain: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if len(self.aes_key) != 43:
            raise ValueError("an EncodingAESKey has 43 characters")

    def now(self) -> float:
        return self.clock() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward (tokens expire, windows close, quotas' days turn)."""
        self.offset += seconds

    def user(self, openid: str) -> WxUser:
        if openid not in self.users:
            self.users[openid] = WxUser(openid)
        return self.users[openid]

    def open_window(self, openid: str, kind: str) -> None:
        self.user(openid).grants[kind] = grant(kind, self.now())

    def record_payment(self, openid: str) -> None:
        """A successful payment by ``openid``: customer-service messages without a count for 48 h."""
        self.open_window(openid, "payment")

    def received(self, openid: str) -> list[Received]:
        """Everything ``openid`` saw in the chat, in order."""
        return list(self.delivered.get(openid, []))

    def texts(self, openid: str) -> list[str]:
        return [r.text for r in self.received(openid)]

    def oauth_code(self, openid: str) -> str:
        """A code as WeChat gives the shop's page after an snsapi_base redirect: one use, 5 minutes."""
        code = secrets.token_hex(16)
        self.oauth_codes[code] = (openid, self.now() + self.oauth_code_ttl)
        return code

    def expire_token(self) -> None:
        """Every token issued so far has expired (the next call with one answers 42001)."""
        for t in self.tokens.values():
            t.expires_at = min(t.expires_at, self.now())

    def scene_of(self, ticket: str) -> str | None:
        """The scene a QR code ticket encodes (what scanning it pushes), None if unknown or expired."""
        found = self.qrcodes.get(ticket)
        if found is None or (found[1] is not None and found[1] <= self.now()):
            return None
        return found[0]

    def _issue(self, kind: str) -> Token:
        token = Token(secrets.token_urlsafe(48), self.now() + self.token_ttl, kind)
        self.tokens[token.value] = token
        return token

    def _check_token(self, value: str | None) -> None:
        if not value:
            raise e.WeChatError(e.ACCESS_TOKEN_MISSING, "access_token missing")
        token = self.tokens.get(value)
        now = self.now()
        if token is None or (token.revoked_at is not None and token.revoked_at <= now):
            raise e.WeChatError(e.INVALID_CREDENTIAL, TOKEN_REFUSED)
        if token.expires_at <= now:
            raise e.WeChatError(e.ACCESS_TOKEN_EXPIRED, "access_token expired")

    def _count(self, path: str) -> None:
        limit = self.daily_quotas.get(path)
        day = int(self.now() // 86400)
        if limit is not None and self.calls[(path, day)] >= limit:
            raise e.WeChatError(e.DAILY_QUOTA, "reach max api daily quota limit")
        self.calls[(path, day)] += 1
