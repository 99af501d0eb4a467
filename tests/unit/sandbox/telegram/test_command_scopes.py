"""setMyCommands / deleteMyCommands with scopes, as Telegram takes them, and the menu a client then shows."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.telegram import Emulator
from tests.unit.sandbox.telegram.conftest import USER, call, refused


def cmds(*names: str) -> list[dict[str, str]]:
    return [{"command": n, "description": f"does {n}"} for n in names]


def chat(chat_id: int = USER) -> dict[str, Any]:
    return {"type": "chat", "chat_id": chat_id}


@pytest.mark.parametrize(
    "scope",
    [
        {"type": "everyone"},
        {"type": "chat"},
        {"type": "chat_member", "chat_id": -100},
        {"chat_id": USER},
        "chat",
    ],
)
async def test_a_scope_is_one_of_telegrams_types_with_the_fields_it_needs(emu: Emulator, scope: Any) -> None:
    for method, extra in (("setMyCommands", {"commands": cmds("start")}), ("deleteMyCommands", {})):
        e = await refused(emu, method, scope=scope, **extra)
        assert "BotCommandScope" in e.description, (method, scope)


async def test_a_chat_scope_needs_a_chat_the_bot_has(emu: Emulator) -> None:
    emu.user(2, "Bob", started=False)  # never opened the bot
    for chat_id in (2, 3, -100):
        e = await refused(emu, "setMyCommands", commands=cmds("start"), scope=chat(chat_id))
        assert e.description == "Bad Request: chat not found", chat_id
    assert await call(emu, "setMyCommands", commands=cmds("start"), scope=chat())
    e = await refused(
        emu, "setMyCommands", commands=cmds("a"), scope={"type": "chat_administrators", "chat_id": USER}
    )
    assert "private chat" in e.description


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        ({"command": "Stats", "description": "d"}, "BOT_COMMAND_INVALID"),
        ({"command": "x" * 33, "description": "d"}, "BOT_COMMAND_INVALID"),
        ({"command": "ok", "description": "d" * 257}, "DESCRIPTION_INVALID"),
    ],
)
async def test_scoped_commands_follow_the_same_rules_as_the_default_ones(
    emu: Emulator, command: dict[str, str], fragment: str
) -> None:
    assert fragment in (await refused(emu, "setMyCommands", commands=[command], scope=chat())).description
    too_many = cmds(*(f"c{i}" for i in range(101)))
    assert "at most 100" in (await refused(emu, "setMyCommands", commands=too_many, scope=chat())).description
    bad_language = await refused(emu, "deleteMyCommands", scope=chat(), language_code="zh_CN")
    assert bad_language.description == "Bad Request: invalid language code specified"
    assert emu.scoped_commands == {}


async def test_a_client_shows_its_chats_menu_in_its_language_then_the_chats_then_the_default(
    emu: Emulator,
) -> None:
    emu.user(2, "Bob")
    await call(emu, "setMyCommands", commands=cmds("start"))
    await call(emu, "setMyCommands", commands=cmds("start", "help"), language_code="zh")
    await call(emu, "setMyCommands", commands=cmds("start", "stats"), scope=chat())
    await call(
        emu, "setMyCommands", commands=cmds("start", "stats", "audit"), scope=chat(), language_code="zh"
    )
    assert emu.menu(USER, "en") == ["start", "stats"]
    assert emu.menu(USER, "zh-hans") == ["start", "stats", "audit"]
    assert emu.menu(2, "zh-hans") == ["start", "help"] and emu.menu(2, "en") == ["start"]

    await call(emu, "deleteMyCommands", scope=chat(), language_code="zh")
    assert emu.menu(USER, "zh-hans") == ["start", "stats"]
    await call(emu, "deleteMyCommands", scope=chat())
    assert emu.menu(USER, "en") == ["start"] and emu.menu(USER, "zh") == ["start", "help"]
    assert await call(emu, "deleteMyCommands", scope=chat())  # nothing left to delete: still fine
