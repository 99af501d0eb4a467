"""Telegram's background workers: no update starts them. The outbox sender delivers what the shop wrote to
the outbox (keys, refunds, notices) within Telegram's flood limits; the Stars ledger reconciliation finds
payments whose update never arrived. ``scheduler/`` decides when the reconciliation runs; the bot
starts the sender."""
