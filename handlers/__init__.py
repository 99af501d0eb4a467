"""The channels: how buyers and admins reach the shop. One package per platform (``telegram/`` today,
``wechat/`` next), each turning the platform's updates into calls of ``core.services`` and delivering the
outbox's typed messages (``core.messages``) its own way. ``money`` (parsing and formatting amounts with
Babel) is shared by every channel and the CLI. Nothing here imports ``bot`` (tests/test_boundaries.py)."""
