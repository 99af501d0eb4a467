"""The layers, as the imports of every module show them (read with ``ast``, so an import inside a function
counts too). See README "How it is built"."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "handlers", "bot", "scheduler", "sandbox")
PLATFORM_LIBRARIES = {"aiogram", "aiohttp", "wechatpy", "apscheduler", "babel"}

# (package, what it must not import, why)
RULES = [
    ("core", PLATFORM_LIBRARIES | {"handlers", "bot", "scheduler", "sandbox"}, "core is framework-free"),
    ("handlers", {"bot", "scheduler", "sandbox"}, "channels never reach into the composition root"),
    ("scheduler", {"aiogram", "aiohttp", "wechatpy", "handlers", "bot", "sandbox"}, "jobs call core only"),
    ("sandbox", {"handlers", "bot", "scheduler"}, "the emulators play the platforms, not the shop"),
]
# Who may import the emulators: the composition root (the terminal sandbox), the tests, and benchmarks
# (which drive the real bot against them).
SANDBOX_USERS = {"bot", "sandbox", "tests", "benchmarks"}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside its own top-level package
                found.add(path.relative_to(ROOT).parts[0])
            elif node.module:
                found.add(node.module.split(".")[0])
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_every_package_has_modules() -> None:
    for package in PACKAGES:
        assert modules(package), f"{package}/ has no modules: the rules below would check nothing"


@pytest.mark.parametrize(("package", "forbidden", "why"), RULES, ids=[r[0] for r in RULES])
def test_a_layer_imports_nothing_it_must_not(package: str, forbidden: set[str], why: str) -> None:
    broken = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & forbidden)
        for path in modules(package)
        if imported_packages(path) & forbidden
    }
    assert broken == {}, why


def test_only_the_composition_root_tests_and_benchmarks_import_the_emulators() -> None:
    users = {
        str(path.relative_to(ROOT))
        for top in sorted(p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith("."))
        if top not in SANDBOX_USERS
        for path in (ROOT / top).rglob("*.py")
        if "sandbox" in imported_packages(path)
    }
    assert users == set()


def test_the_rules_see_a_forbidden_import(tmp_path: Path) -> None:
    # The reader itself: an import inside a function, and a dotted one, are found.
    probe = tmp_path / "probe.py"
    probe.write_text("import babel.numbers\ndef f():\n    from aiogram import Bot\n    return Bot\n")
    assert imported_packages(probe) == {"aiogram", "babel"}
