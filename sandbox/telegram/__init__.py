"""A local Telegram Bot API server that holds the bot to Telegram's rules, plus an API to play users (send
text, tap a button, open a link to the bot, pay or forward an invoice, upload a file, block the bot, add the
bot to groups, join them and write there, post in channels, use the bot inline).

``keyshop sandbox`` and the end-to-end tests use it; nothing here ever reaches Telegram. By concern:

* ``html``      – tdlib's HTML parse mode (tags, attributes, entities, UTF-16 offsets)
* ``limits``    – text lengths, keyboards and buttons, commands, flood-control buckets
* ``chats``     – users, groups/supergroups/channels, GroupAnonymousBot, what the bot sent (``Sent``)
* ``payments``  – invoice fields, currencies and their bounds, Stars, charges
* ``inline``    – inline mode: inline queries, answerInlineQuery's rules, chosen results
* ``webhook``   – setWebhook validation and delivery
* ``state``     – the shared state; ``players`` – playing users; ``api`` – the Bot API methods, with
  ``api_files`` (sendDocument, sendPhoto, getFile) and ``api_payments`` (invoices, pre-checkout, refunds,
  the Stars ledger) as its mixins
* ``server``    – ``Emulator`` and its HTTP server (``serve``)

The rules and where they come from are gathered in ``../shared/TELEGRAM_LIMITS.md``; each has a test in
``tests/unit/sandbox/telegram/``.
"""

from sandbox.telegram.chats import GROUP_ANONYMOUS_BOT, EmuChat, EmuUser, Sent
from sandbox.telegram.errors import ApiError
from sandbox.telegram.html import parse_html, visible_text
from sandbox.telegram.payments import Payment
from sandbox.telegram.server import Emulator, serve

__all__ = [
    "GROUP_ANONYMOUS_BOT",
    "ApiError",
    "EmuChat",
    "EmuUser",
    "Emulator",
    "Payment",
    "Sent",
    "parse_html",
    "serve",
    "visible_text",
]
