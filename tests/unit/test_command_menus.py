"""Each role's command menu comes from the one table of admin commands, described in both languages."""

from __future__ import annotations

from pathlib import Path

from core.roles import Grant, Role
from handlers.telegram.admin.refusals import ADMIN_COMMAND_POWERS, ADMIN_COMMANDS
from handlers.telegram.commands import COMMANDS, commands_for

LOCALES = Path(__file__).resolve().parents[2] / "locales"


def test_a_buyer_gets_the_buyer_commands_only() -> None:
    assert commands_for(None) == list(COMMANDS)


def test_each_role_gets_the_buyer_commands_and_the_admin_commands_its_powers_reach() -> None:
    owner = commands_for(Grant(Role.OWNER))
    admin = commands_for(Grant(Role.ADMIN))
    operator = commands_for(Grant(Role.OPERATOR, frozenset({1})))
    assert owner == [*COMMANDS, *ADMIN_COMMANDS]
    assert "stats" in admin and not {"staff", "audit"} & set(admin)
    assert "payouts" in admin and "payouts" not in operator  # money: never an operator's
    assert operator == [*COMMANDS, "admin", "stock", "order", "orders_pending", "import", "void"]
    assert all(len(menu) <= 100 for menu in (owner, admin, operator))  # Telegram's limit


def test_every_admin_command_is_a_valid_telegram_command_with_a_description_in_both_languages() -> None:
    import re

    for locale in ("en", "zh_CN"):
        catalog = (LOCALES / locale / "LC_MESSAGES" / "messages.po").read_text(encoding="utf-8")
        for command in ADMIN_COMMAND_POWERS:
            assert re.fullmatch(r"[a-z0-9_]{1,32}", command)
            assert f'msgid "cmd-{command}"' in catalog, (locale, command)
