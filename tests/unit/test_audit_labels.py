"""Every audit action the shop writes has a label in both languages (/audit and /order's trail show it);
an action with none shows as it is stored. The actions are collected from the source, so a new
``audit.add(..., "new_action")`` without its ``audit-action-new_action`` label fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot.i18n import SOURCE, build_i18n
from handlers.telegram.admin.common import action_label

ROOT = Path(__file__).resolve().parents[2]
WRITERS = ("core", "bot", "scheduler", "handlers")  # where audit rows may be written from


def _names(node: ast.expr, where: str) -> set[str]:
    """The action names an argument can be: a literal, or either branch of ``a if cond else b``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _names(node.body, where) | _names(node.orelse, where)
    raise AssertionError(f"{where}: write the audit action as a literal so it can be labelled")


def written_actions() -> dict[str, str]:
    """Each action passed to ``<...>.audit.add(at, actor, action, ...)``, with where it is written."""
    found: dict[str, str] = {}
    for package in WRITERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "add"
                    and isinstance(node.func.value, ast.Attribute)
                    and node.func.value.attr == "audit"
                ):
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                arg = (
                    node.args[2]
                    if len(node.args) > 2
                    else next((k.value for k in node.keywords if k.arg == "action"), None)
                )
                assert arg is not None, f"{where}: an audit row without an action"
                for name in _names(arg, where):
                    found.setdefault(name, where)
    return found


def _catalog(lang: str) -> dict[str, str]:
    with (SOURCE / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return {m.id: m.string for m in read_po(f) if m.id}


def test_the_collector_finds_the_actions_written_across_the_core() -> None:
    actions = written_actions()
    assert {"order_created", "keys_revealed", "product_updated", "payment_refunded_by_hand"} <= set(actions)
    assert {"keys_voided", "keys_restocked", "user_banned", "user_unbanned"} <= set(actions)  # both branches


@pytest.mark.parametrize("lang", ["en", "zh_CN"])
def test_every_audit_action_written_anywhere_has_a_label(lang: str) -> None:
    catalog = _catalog(lang)
    missing = {a: where for a, where in written_actions().items() if f"audit-action-{a}" not in catalog}
    assert missing == {}, f"add audit-action-<name> to both catalogs for {missing}"


def test_labels_are_only_for_actions_the_shop_writes() -> None:
    labelled = {k.removeprefix("audit-action-") for k in _catalog("en") if k.startswith("audit-action-")}
    assert labelled - set(written_actions()) == set()


@pytest.mark.parametrize(
    ("locale", "action", "label"),
    [
        ("en", "keys_revealed", "keys revealed"),
        ("zh_CN", "keys_revealed", "卡密已查看"),
        ("zh_CN", "payment_refunded_by_hand", "已手动退款"),
        ("en", "something_new", "something_new"),  # unknown: shown as stored
        ("zh_CN", "<b>odd</b>", "<b>odd</b>"),  # as stored (the screens escape it)
    ],
)
def test_an_action_reads_in_the_owners_language_or_as_stored(locale: str, action: str, label: str) -> None:
    i18n = build_i18n()
    with i18n.context(), i18n.use_locale(locale):
        assert action_label(action) == label
