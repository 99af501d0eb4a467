"""Stand-ins for the chat platforms, so the shop runs and is tested with no real account: each emulator
holds the bot to its platform's rules and plays the users (``telegram/``: the Bot API; WeChat will join as
``wechat/``), plus the demo catalog (``demo``). ``keyshop sandbox`` and the tests use them; nothing here
reaches a real platform.

Nothing here imports ``bot`` or ``handlers``; only ``bot`` (the composition root) and the tests import this.
"""
