"""The official account's API, the few endpoints the shop calls, over aiohttp (wechatpy 1.8.18's client is
synchronous and fetches tokens the legacy way, which knocks out other instances' tokens).

Every call authenticates with the access_token shared by all instances (``TokenStore``). A call WeChat
answers 40001/42001 (token invalid or expired) forgets that token, fetches one again in normal mode and is
retried once. Every failure is a ``WechatApiError`` (``errors.api_error`` for WeChat's codes; ``TRANSPORT``
for a timeout, an HTTP error or an answer that is not WeChat's JSON), whose message names the endpoint but
never the AppSecret or the token."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp

from handlers.wechat.errors import TokenRejected, WechatApiError, api_error
from handlers.wechat.tokens import TokenStore

log = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds for one call
TRANSPORT = -2  # the errcode of a WechatApiError for a call that got no answer of WeChat's
SCENE_STR_MAX = 64  # a parametric QR code's scene_str: 1 to 64 characters
SHOW_QR = "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket="


class WechatApi:
    def __init__(
        self,
        app_id: str,
        app_secret: str,
        api_url: str,
        tokens: TokenStore,
        session: aiohttp.ClientSession | None = None,
        *,
        timeout: float = TIMEOUT,
    ) -> None:
        """``session``: shared with the caller, who closes it; without one the client makes (and
        ``close`` closes) its own."""
        self.app_id, self._secret, self.api_url = app_id, app_secret, api_url.rstrip("/")
        self.tokens = tokens
        self._session, self._own_session = session, session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def __repr__(self) -> str:  # never the secret
        return f"WechatApi(app_id={self.app_id!r}, api_url={self.api_url!r})"

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def send_text(self, openid: str, text: str) -> None:
        """A customer-service text message; raises ``WindowClosed``, ``QuotaUsed``, ``TextTooLong``…"""
        await self._call(
            "/cgi-bin/message/custom/send", {"touser": openid, "msgtype": "text", "text": {"content": text}}
        )

    async def send_template(
        self, openid: str, template_id: str, data: Mapping[str, str], url: str | None = None
    ) -> None:
        """A template message: ``data`` maps each field of the template to its value."""
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {key: {"value": value} for key, value in data.items()},
        }
        if url is not None:
            body["url"] = url
        await self._call("/cgi-bin/message/template/send", body)

    async def create_menu(self, menu: dict[str, Any]) -> None:
        """Replace the account's custom menu (``{"button": [...]}``)."""
        await self._call("/cgi-bin/menu/create", menu)

    async def permanent_qr(self, scene: str) -> str:
        """A new permanent QR code for ``scene`` (``QR_LIMIT_STR_SCENE``; 100,000 per account for ever, so
        keep what it returns): the link of its image."""
        if not 1 <= len(scene) <= SCENE_STR_MAX:
            raise ValueError(f"a QR code's scene has 1 to {SCENE_STR_MAX} characters")
        body = {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": scene}}}
        answer = await self._call("/cgi-bin/qrcode/create", body)
        ticket = answer.get("ticket")
        if not isinstance(ticket, str) or not ticket:
            raise WechatApiError(TRANSPORT, "/cgi-bin/qrcode/create answered without a ticket")
        return SHOW_QR + quote(ticket, safe="")

    async def openid_from_code(self, code: str) -> str:
        """The openid behind an snsapi_base OAuth ``code`` (one use, 5 minutes)."""
        query = {
            "appid": self.app_id,
            "secret": self._secret,
            "code": code,
            "grant_type": "authorization_code",
        }
        answer = await self._request("GET", "/sns/oauth2/access_token", query, None)
        openid = answer.get("openid")
        if not isinstance(openid, str) or not openid:
            raise WechatApiError(TRANSPORT, "/sns/oauth2/access_token answered without an openid")
        return openid

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` posted to ``path`` with the shared token; once more with a new one if it was refused."""
        token = await self.tokens.token(self._fetch_token)
        try:
            return await self._request("POST", path, {"access_token": token}, body)
        except TokenRejected as e:
            log.info("wechat %s: token refused (%d), fetching it again", path, e.errcode)
            await self.tokens.rejected(token)
        token = await self.tokens.token(self._fetch_token)
        return await self._request("POST", path, {"access_token": token}, body)

    async def _fetch_token(self) -> tuple[str, int]:
        """``stable_token`` in normal mode: the token every caller shares (never ``force_refresh``, which
        would invalidate it for every instance, and is limited to 20 a day)."""
        body = {
            "grant_type": "client_credential",
            "appid": self.app_id,
            "secret": self._secret,
            "force_refresh": False,
        }
        answer = await self._request("POST", "/cgi-bin/stable_token", {}, body)
        token, expires_in = answer.get("access_token"), answer.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, int):
            raise WechatApiError(TRANSPORT, "/cgi-bin/stable_token answered without a token")
        return token, expires_in

    async def _request(
        self, method: str, path: str, query: Mapping[str, str], body: dict[str, Any] | None
    ) -> dict[str, Any]:
        """WeChat's JSON answer; ``WechatApiError`` for an errcode or for anything that is not an answer.
        The query (which may carry the token or the secret) never goes into a message."""
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"} if data is not None else None
        try:
            async with self._client().request(
                method, self.api_url + path, params=query, data=data, headers=headers, timeout=self._timeout
            ) as resp:
                if resp.status != 200:
                    raise WechatApiError(TRANSPORT, f"{path} answered HTTP {resp.status}")
                raw = await resp.read()
        except TimeoutError:
            raise WechatApiError(TRANSPORT, f"{path} did not answer within {self._timeout.total} s") from None
        except aiohttp.ClientError as e:  # its message can hold the URL, with the token: only its kind
            raise WechatApiError(TRANSPORT, f"{path} unreachable ({type(e).__name__})") from None
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise WechatApiError(TRANSPORT, f"{path} answered something that is not WeChat's JSON")
        errcode = answer.get("errcode", 0)
        if errcode != 0:
            errcode = errcode if isinstance(errcode, int) else TRANSPORT
            raise api_error(errcode, f"{path}: {answer.get('errmsg', '')}")
        return answer

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session
