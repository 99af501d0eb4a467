"""The official-account API the shop calls: tokens (stable and legacy), customer-service and template
messages, the menu, parametric QR codes and snsapi_base OAuth. Each method takes the query and the JSON body
and returns WeChat's JSON answer, or raises ``WeChatError``."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Mapping
from typing import Any

from sandbox.wechat import errors as e
from sandbox.wechat import limits
from sandbox.wechat.state import EmulatorState, Received

Query = Mapping[str, str]
SPENT = -1.0  # an OAuth code's expiry once it was exchanged


class OfficialAccountApi(EmulatorState):
    _msgids = itertools.count(1_000_001)

    def _credentials(self, appid: Any, secret: Any) -> None:
        if appid != self.appid:
            raise e.WeChatError(e.INVALID_APPID, "invalid appid")
        if secret != self.secret:
            raise e.WeChatError(e.INVALID_APPSECRET, "invalid appsecret")

    def stable_token(self, query: Query, body: Any) -> dict[str, Any]:
        """Normal mode: the same token to every caller until its last ``stable_renew_early`` seconds, when a
        call gets a new one (the old one works until it expires); ``force_refresh`` issues a new one and
        invalidates the old (at most ``force_refresh_per_day`` a day, then 45009)."""
        body = body if isinstance(body, dict) else {}
        if body.get("grant_type") != "client_credential":
            raise e.WeChatError(e.INVALID_ARGS, "invalid args: grant_type")
        self._credentials(body.get("appid"), body.get("secret"))
        self._count("/cgi-bin/stable_token")
        now = self.now()
        current = [t for t in self.tokens.values() if t.kind == "stable" and t.revoked_at is None]
        live = [t for t in current if t.expires_at - now > self.stable_renew_early]
        if body.get("force_refresh"):
            day = int(now // 86400)
            if self.force_refreshes[day] >= self.force_refresh_per_day:
                raise e.WeChatError(e.DAILY_QUOTA, "reach max api daily quota limit")
            self.force_refreshes[day] += 1
            for t in current:
                t.revoked_at = now
            live = []
        token = max(live, key=lambda t: t.expires_at) if live else self._issue("stable")
        return {"access_token": token.value, "expires_in": int(token.expires_at - now)}

    def legacy_token(self, query: Query, body: Any) -> dict[str, Any]:
        """``GET /cgi-bin/token``: every call issues a new token; the previous ones stop working after
        ``legacy_overlap`` seconds (why several processes knock each other out)."""
        if query.get("grant_type") != "client_credential":
            raise e.WeChatError(e.INVALID_ARGS, "invalid args: grant_type")
        self._credentials(query.get("appid"), query.get("secret"))
        self._count("/cgi-bin/token")
        now = self.now()
        for t in self.tokens.values():
            if t.kind == "legacy" and t.revoked_at is None:
                t.revoked_at = now + self.legacy_overlap
        token = self._issue("legacy")
        return {"access_token": token.value, "expires_in": int(self.token_ttl)}

    def custom_send(self, query: Query, body: Any) -> dict[str, Any]:
        """Text only, within the user's window and its quota (``limits.spend``), ≤ 2048 bytes."""
        self._check_token(query.get("access_token"))
        self._count("/cgi-bin/message/custom/send")
        body = body if isinstance(body, dict) else {}
        if body.get("msgtype") != "text":
            raise e.WeChatError(e.INVALID_MESSAGE_TYPE, "invalid message type")
        user = self.users.get(str(body.get("touser")))
        if user is None:
            raise e.WeChatError(e.INVALID_OPENID, "invalid openid")
        text = body.get("text")
        content = limits.check_text(text.get("content") if isinstance(text, dict) else None)
        if not user.subscribed:
            raise e.WeChatError(e.OUT_OF_WINDOW, "response out of time limit or subscription is canceled")
        limits.spend(user.grants, self.now())
        self.delivered[user.openid].append(Received("custom", content))
        return dict(e.OK)

    def template_send(self, query: Query, body: Any) -> dict[str, Any]:
        """To a follower, any time; each field ≤ 20 characters without line breaks (47003)."""
        self._check_token(query.get("access_token"))
        self._count("/cgi-bin/message/template/send")
        body = body if isinstance(body, dict) else {}
        user = self.users.get(str(body.get("touser")))
        if user is None:
            raise e.WeChatError(e.INVALID_OPENID, "invalid openid")
        template_id = body.get("template_id")
        if (
            not isinstance(template_id, str)
            or not template_id
            or (self.templates is not None and template_id not in self.templates)
        ):
            raise e.WeChatError(e.INVALID_TEMPLATE_ID, "invalid template_id")
        data = limits.check_template_data(body.get("data"))
        if not user.subscribed:
            raise e.WeChatError(e.REQUIRE_SUBSCRIBE, "require subscribe")
        text = "\n".join(f"{k}: {v}" for k, v in data.items())
        url = body.get("url") if isinstance(body.get("url"), str) else None
        self.delivered[user.openid].append(Received("template", text, "template", template_id, data, url))
        return {**e.OK, "msgid": next(self._msgids)}

    def menu_create(self, query: Query, body: Any) -> dict[str, Any]:
        self._check_token(query.get("access_token"))
        self._count("/cgi-bin/menu/create")
        self.menu = limits.check_menu(body)
        return dict(e.OK)

    def qrcode_create(self, query: Query, body: Any) -> dict[str, Any]:
        self._check_token(query.get("access_token"))
        self._count("/cgi-bin/qrcode/create")
        _, scene, expire = limits.check_qrcode(body)
        ticket = "gQ" + secrets.token_urlsafe(24)
        self.qrcodes[ticket] = (scene, None if expire is None else self.now() + expire)
        answer: dict[str, Any] = {"ticket": ticket, "url": f"http://weixin.qq.com/q/{ticket[2:14]}"}
        if expire is not None:
            answer["expire_seconds"] = expire
        return answer

    def oauth_access_token(self, query: Query, body: Any) -> dict[str, Any]:
        """snsapi_base: the openid behind a code from ``oauth_code``; a code works once, for 5 minutes."""
        self._credentials(query.get("appid"), query.get("secret"))
        if query.get("grant_type") != "authorization_code":
            raise e.WeChatError(e.INVALID_ARGS, "invalid args: grant_type")
        code = query.get("code", "")
        found = self.oauth_codes.get(code)
        if found is None:
            raise e.WeChatError(e.INVALID_CODE, "invalid code")
        openid, expiry = found
        if expiry == SPENT:
            raise e.WeChatError(e.CODE_BEEN_USED, "code been used")
        if expiry <= self.now():
            raise e.WeChatError(e.INVALID_CODE, "invalid code")
        self.oauth_codes[code] = (openid, SPENT)
        return {
            "access_token": secrets.token_urlsafe(32),
            "expires_in": 7200,
            "refresh_token": secrets.token_urlsafe(32),
            "openid": openid,
            "scope": "snsapi_base",
        }
