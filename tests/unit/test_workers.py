"""The parallel workers' isolation (tests/workers.py) and the rule that keeps process tests on one worker."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests import conftest
from tests.conftest import PG_SKIP_REASON, PG_URL
from tests.workers import (
    REDIS_DATABASES,
    _ensure_database,
    isolate,
    postgres_url_for,
    redis_url_for,
    worker_number,
)

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


def test_a_worker_never_shares_a_redis_database_with_another() -> None:
    """Past Redis's 16 databases the count would wrap onto another worker's (gw16 onto gw0's: each
    flushing the other's data); such a worker refuses to start instead."""
    seen = {redis_url_for("redis://h/15", n) for n in range(REDIS_DATABASES)}
    assert len(seen) == REDIS_DATABASES
    with pytest.raises(ValueError, match="16"):
        redis_url_for("redis://h/15", REDIS_DATABASES)


def test_a_worker_database_name_postgres_would_cut_short_is_refused() -> None:
    """PostgreSQL cuts names at 63 bytes: ``<name>_gw1`` and ``<name>_gw2`` would be one database."""
    base = "x" * 59
    assert postgres_url_for(f"postgresql://h/{base}", 9).endswith(f"/{base}_gw9")
    with pytest.raises(ValueError, match="63"):
        postgres_url_for(f"postgresql://h/{base}", 10)


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason=PG_SKIP_REASON)
def test_a_worker_database_is_created_whatever_characters_its_name_has() -> None:
    import psycopg

    assert PG_URL
    name = 'keyshop "odd" name;_gw9'
    admin = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {}").format(psycopg.sql.Identifier(name)))
    try:
        _ensure_database(PG_URL, name)
        _ensure_database(PG_URL, name)  # already there: nothing to do
        with psycopg.connect(admin) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        assert found is not None
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {}").format(psycopg.sql.Identifier(name)))


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


def _options(**given: object) -> SimpleNamespace:
    """The options ``pytest_cmdline_main`` reads, as plain ``pytest`` leaves them, with ``given``."""
    opt = {"numprocesses": None, "dist": "no", "usepdb": False, "trace": False, "collectonly": False}
    opt["capture"] = "fd"
    return SimpleNamespace(**(opt | given))


def _decides(opt: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    config = SimpleNamespace(option=opt, pluginmanager=SimpleNamespace(hasplugin=lambda name: True))
    conftest.pytest_cmdline_main(config)  # type: ignore[arg-type]
    return opt


def test_plain_pytest_runs_on_every_core(monkeypatch: pytest.MonkeyPatch) -> None:
    opt = _decides(_options(), monkeypatch)
    assert (opt.numprocesses, opt.dist) == ("auto", "loadgroup")


@pytest.mark.parametrize(
    "given",
    [
        {"numprocesses": 0},
        {"usepdb": True},
        {"trace": True},  # --trace: a worker's debugger would never stop (its stdin is not the terminal)
        {"capture": "no"},  # -s: what a breakpoint() needs; in a worker it fails with BdbQuit
        {"collectonly": True},
    ],
)
def test_a_debugger_or_an_explicit_choice_runs_in_this_process(
    given: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    opt = _decides(_options(**given), monkeypatch)
    assert opt.numprocesses == given.get("numprocesses") and opt.dist == "no"


def test_auto_never_starts_more_workers_than_redis_has_databases() -> None:
    """``-n auto`` on a machine of 32 cores would start gw16…gw31, whose Redis databases are gw0…gw15's."""
    for cores, expected in ((2, 2), (16, 16), (64, REDIS_DATABASES)):
        hook = conftest.pytest_xdist_auto_num_workers(config=None)  # type: ignore[arg-type]
        next(hook)
        with pytest.raises(StopIteration) as done:
            hook.send(cores)
        assert done.value.value == expected
