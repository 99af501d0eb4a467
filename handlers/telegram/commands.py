"""The bot's command menus (the "/" menu of Telegram's clients), in every language we have.

- Everyone: the buyer's commands (``COMMANDS``), the default scope.
- Each owner and staff member: their own menu in their private chat (``BotCommandScopeChat``): the buyer's
  commands and the admin commands their role reaches (``refusals.ADMIN_COMMAND_POWERS``, the one table of
  admin commands). Set at start for everyone, and again by /staff for the person it changes; a person taken
  off the staff gets the default menu back (their chat's menu is deleted).

Telegram picks a chat's menu in this order: the chat's in the user's language, the chat's, then the default
scope's. English is each scope's default (no language code), Chinese its ``zh`` list. A menu is only a
convenience: every command is checked again when it is used, so a menu that failed to update (a user who
never opened the bot: "chat not found") is logged and skipped."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, BotCommandScopeChat
from aiogram.utils.i18n import I18n

from core.roles import Grant, Role
from core.services import Services
from handlers.telegram.admin.filters import CHANNEL
from handlers.telegram.admin.refusals import ADMIN_COMMAND_POWERS

log = logging.getLogger(__name__)

COMMANDS = ("start", "catalog", "orders", "invite", "share", "withdraw", "language", "help")


def _language(locale: str) -> str | None:
    return None if locale == "en" else locale.split("_")[0]


def commands_for(grant: Grant | None) -> list[str]:
    """The commands in the menu of someone with ``grant`` (None: a buyer)."""
    if grant is None:
        return list(COMMANDS)
    admin = [c for c, power in ADMIN_COMMAND_POWERS.items() if power is None or grant.may(power)]
    return list(COMMANDS) + [c for c in admin if c not in COMMANDS]


def _menu(i18n: I18n, locale: str, commands: list[str]) -> list[BotCommand]:
    with i18n.use_locale(locale):
        return [BotCommand(command=c, description=i18n.gettext(f"cmd-{c}")) for c in commands]


async def set_commands(bot: Bot, i18n: I18n) -> None:
    """The default menu in every language we have (English also as the default for everyone else)."""
    for locale in i18n.available_locales:
        cmds = _menu(i18n, locale, list(COMMANDS))
        await bot.set_my_commands(cmds, language_code=_language(locale))
        if locale == "en":
            await bot.set_my_commands(cmds, language_code="en")


async def set_staff_menu(bot: Bot, i18n: I18n, tg_id: int, grant: Grant) -> bool:
    """One owner's or staff member's menu, in their private chat; False when Telegram refused it."""
    scope = BotCommandScopeChat(chat_id=tg_id)
    try:
        for locale in i18n.available_locales:
            cmds = _menu(i18n, locale, commands_for(grant))
            await bot.set_my_commands(cmds, scope=scope, language_code=_language(locale))
    except TelegramAPIError as e:
        log.warning("command menu of %s not set: %s", tg_id, e.message)
        return False
    return True


async def reset_staff_menu(bot: Bot, i18n: I18n, tg_id: int) -> bool:
    """Back to the default menu for someone no longer on the staff."""
    scope = BotCommandScopeChat(chat_id=tg_id)
    try:
        for locale in i18n.available_locales:
            await bot.delete_my_commands(scope=scope, language_code=_language(locale))
    except TelegramAPIError as e:
        log.warning("command menu of %s not reset: %s", tg_id, e.message)
        return False
    return True


async def set_staff_menus(bot: Bot, i18n: I18n, services: Services, admin_ids: list[int]) -> None:
    """Every owner's and staff member's menu (at start)."""
    people = {tg_id: Grant(Role.OWNER) for tg_id in admin_ids}
    for m in await services.staff.members():
        if m.channel == CHANNEL and m.external_id.isdigit() and int(m.external_id) not in people:
            people[int(m.external_id)] = m.grant
    for tg_id, grant in people.items():
        await set_staff_menu(bot, i18n, tg_id, grant)
