"""A local WeChat official-account platform (公众号), the second channel's emulator: it plays users who push
signed XML to the shop's callback, and serves the API the shop calls. Nothing here ever reaches WeChat.

What it enforces (the facts and their sources: ``../shared/WECHAT.md``, from developers.weixin.qq.com):

* pushes (``players``): text, menu CLICK, subscribe (``qrscene_<scene>``), SCAN, unsubscribe, signed with
  the token (sha1 of token, timestamp, nonce) in plaintext, compatible (plain fields plus ``<Encrypt>``) or
  safe mode (``encrypt_type=aes``, ``msg_signature``, only ``<Encrypt>``), by wechatpy's ``WeChatCrypto``;
  a 5 s timeout and 3 attempts in all with the same MsgId/CreateTime; the reply must be valid (addressed
  to the user, encrypted in safe mode, correctly signed) or the user sees "该公众号暂时无法提供服务";
  ``success`` or an empty body shows nothing. The GET server check echoes ``echostr``.
* tokens (``api``): ``stable_token`` gives every caller the same token until it expires (``token_ttl``,
  7200 s), and a new one to calls in its last 5 minutes (the old one works until it expires, as WeChat
  documents for normal mode); ``force_refresh`` invalidates it (≤ 20 a day, then 45009); the legacy
  ``token`` invalidates its predecessors after ``legacy_overlap``; 40001 invalid, 42001 expired, 41001
  missing.
* customer-service text (``limits``): only inside the user's window — 48 h and 5 messages after a user
  message, 1 minute and 3 after a menu tap/follow/scan, 48 h without a count after a payment
  (``record_payment``) — 45015 outside it or after unfollowing, 45047 when used up, 45002 over 2048 bytes.
* template messages: fields ≤ 20 characters, no line breaks (47003, the code the docs give for bad
  template data), to followers only (43004).
* menus (1–3 buttons, 1–5 sub-buttons, names, keys, urls: 40016–40023), QR codes (``QR_STR_SCENE`` ≤ 30
  days, ``QR_LIMIT_STR_SCENE``, ``scene_str`` 1–64; 40097 otherwise — the emulator's choice of code),
  snsapi_base OAuth (a code works once: 40029 unknown/expired, 40163 used), a daily quota per endpoint
  (``daily_quotas``, 45009).

By concern: ``errors`` (codes), ``limits`` (pure checks), ``state`` (shared state), ``players`` (users),
``api`` (endpoints), ``server`` (``Emulator``, ``serve``). WeChat Pay is not here yet.
"""

from sandbox.wechat.errors import WeChatError
from sandbox.wechat.players import Push, signature
from sandbox.wechat.server import Emulator, serve
from sandbox.wechat.state import NOTICE, Received

__all__ = ["NOTICE", "Emulator", "Push", "Received", "WeChatError", "serve", "signature"]
