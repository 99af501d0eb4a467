"""Telegram refusing the bot's reply for reasons no one in the shop controls: a callback query answered too
late, a buyer writing faster than Telegram's per-chat limit, a buyer who blocked the bot or deleted the
message a tap belongs to. The buyer is served as well as Telegram allows; nothing is logged as an error and
no admin is alerted (the fixture checks)."""

from __future__ import annotations

import asyncio

from tests.e2e.conftest import ADMIN, Shop

BUYER = 701


async def test_a_catalog_tap_whose_query_expired_still_shows_the_card(shop: Shop) -> None:
    """After a backlog (restart, slow database) a tap older than ~15 s cannot be answered ('query is too
    old'); that is no reason to leave the buyer with nothing."""
    await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    listing = await shop.say(BUYER, "/catalog")
    shop.emu.callback_ttl = 0.0  # every answer from now on is "too old"
    before = len(shop.emu.messages(BUYER))
    await shop.tap_data(BUYER, listing, listing.button("Steam")["callback_data"])
    card = await shop.emu.wait_for(BUYER, after=before)
    assert "Steam 10" in card.text and card.button("Buy")


async def test_a_notice_for_a_tap_answered_too_late_arrives_as_a_message(shop: Shop) -> None:
    pid = await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    listing = await shop.say(BUYER, "/catalog")
    await shop.services.catalog.update_product(pid, active=False)
    shop.emu.callback_ttl = 0.0
    before = len(shop.emu.messages(BUYER))
    await shop.tap_data(BUYER, listing, listing.button("Steam")["callback_data"])
    notice = await shop.emu.wait_for(BUYER, after=before)
    assert notice.text == "Steam 10 is not on sale at the moment."


async def test_a_buyer_writing_quickly_is_slowed_to_telegrams_pace_and_alerts_nobody(shop: Shop) -> None:
    """Eight messages at once: Telegram takes about one reply a second per chat (bursts of 3). The bot
    answers the burst, lets the next few wait their turn, drops the rest with one "slow down" notice, and
    whatever 429 still slips through is no error and no alert."""
    shop.emu.user(BUYER, "Ann")
    for _ in range(8):
        await shop.emu.send_text(BUYER, "hi")
    await asyncio.sleep(6)
    replies = [s.text for s in shop.emu.messages(BUYER)]
    assert any("slow down" in r for r in replies), replies
    assert len(replies) >= 5, replies  # more than Telegram's burst: slowed, not dropped


async def test_a_reply_refused_for_flooding_is_dropped_quietly(shop: Shop) -> None:
    """A 429 with a long retry_after reaches the error handler (the session waits only a few seconds)."""
    shop.emu.user(BUYER, "Ann")
    shop.emu.fail_next("sendMessage", 429, retry_after=30)
    await shop.emu.send_text(BUYER, "/start")
    await asyncio.sleep(1)
    assert shop.emu.messages(ADMIN) == []


async def test_a_buyer_who_blocks_the_bot_right_after_writing_is_marked_and_alerts_nobody(shop: Shop) -> None:
    """The reply to a user who blocked the bot meanwhile fails with 403 Forbidden: nothing is broken, the
    user is marked as having blocked the bot (as the outbox does), until they write again. (A newcomer
    who never bought has no row to mark: nothing is ever written to them.)"""
    shop.emu.user(BUYER, "Ann")
    await shop.services.users.ensure("telegram", str(BUYER))  # a buyer the shop knows
    await shop.emu.send_text(BUYER, "/start")
    shop.emu.block(BUYER)
    await asyncio.sleep(1)
    assert (await shop.services.users.ensure("telegram", str(BUYER))).bot_blocked
    shop.emu.block(BUYER, False)
    assert "Welcome, Ann" in (await shop.say(BUYER, "/start")).text
    assert not (await shop.services.users.ensure("telegram", str(BUYER))).bot_blocked


async def test_a_tap_on_a_message_the_buyer_deleted_meanwhile_sends_a_new_one(shop: Shop) -> None:
    """In a private chat the buyer can delete the bot's messages; a tap racing the deletion makes the edit
    fail with 'message to edit not found': the card comes as a new message instead."""
    await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    listing = await shop.say(BUYER, "/catalog")
    shop.emu._messages[(BUYER, listing.message["message_id"])]["_deleted"] = True
    before = len(shop.emu.messages(BUYER))
    await shop.tap_data(BUYER, listing, listing.button("Steam")["callback_data"])
    card = await shop.emu.wait_for(BUYER, after=before)
    assert card.method == "sendMessage" and "Steam 10" in card.text
    assert shop.emu.messages(ADMIN) == []
