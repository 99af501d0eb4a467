"""The parallel workers' isolation (tests/workers.py) and the rule that keeps process tests on one worker."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.workers import isolate, postgres_url_for, redis_url_for, worker_number

TESTS = Path(__file__).resolve().parents[1]


def test_only_an_xdist_worker_id_has_a_number() -> None:
    assert worker_number("gw0") == 0
    assert worker_number("gw12") == 12
    assert worker_number(None) is None
    assert worker_number("master") is None
    assert worker_number("gw") is None


def test_each_worker_gets_its_own_postgres_database_on_the_same_server() -> None:
    assert postgres_url_for("postgresql://postgres@127.0.0.1:5432/test", 1) == (
        "postgresql://postgres@127.0.0.1:5432/test_gw1"
    )
    assert postgres_url_for("postgresql+psycopg://u:p@db/shop?sslmode=disable", 0) == (
        "postgresql+psycopg://u:p@db/shop_gw0?sslmode=disable"
    )


def test_each_worker_gets_its_own_redis_database_counting_down_and_wrapping() -> None:
    assert redis_url_for("redis://127.0.0.1:6379/15", 0) == "redis://127.0.0.1:6379/15"
    assert redis_url_for("redis://127.0.0.1:6379/15", 2) == "redis://127.0.0.1:6379/13"
    assert redis_url_for("redis://127.0.0.1:6379", 1) == "redis://127.0.0.1:6379/15"


def test_outside_a_worker_the_variables_are_left_alone() -> None:
    env = {"TEST_DATABASE_URL": "postgresql://x/test", "TEST_REDIS_URL": "redis://x/15"}
    isolate(env)
    assert env == {"TEST_DATABASE_URL": "postgresql://x/test", "TEST_REDIS_URL": "redis://x/15"}


def test_a_worker_without_the_servers_changes_nothing_but_its_own_variables() -> None:
    env = {"PYTEST_XDIST_WORKER": "gw3", "TEST_REDIS_URL": "redis://x/15"}
    isolate(env)
    assert env == {"PYTEST_XDIST_WORKER": "gw3", "TEST_REDIS_URL": "redis://x/12"}


STARTS_PROCESSES = ("create_subprocess_exec", "Popen", "webdriver")


def _has_processes_mark(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            return "PROCESSES" in ast.unparse(node.value)
    return False


def test_every_module_that_starts_processes_runs_on_the_processes_worker() -> None:
    """A module that starts keyshop processes or a browser carries ``pytestmark`` with PROCESSES, so that
    ``--dist loadgroup`` never runs two of them at once (their deadlines assume the cores are theirs)."""
    unmarked = []
    for path in sorted(TESTS.rglob("test_*.py")):
        text = path.read_text(encoding="utf-8")
        if path.name == "test_workers.py" or not any(word in text for word in STARTS_PROCESSES):
            continue
        if not _has_processes_mark(ast.parse(text)):
            unmarked.append(str(path.relative_to(TESTS)))
    assert unmarked == [], f"add `pytestmark = PROCESSES` (tests/conftest.py) to {unmarked}"


@pytest.mark.parametrize("name", ["test_outages.py", "test_run_modes.py", "test_several_instances.py"])
def test_the_known_process_modules_are_marked(name: str) -> None:
    assert _has_processes_mark(ast.parse((TESTS / "e2e" / name).read_text(encoding="utf-8")))
