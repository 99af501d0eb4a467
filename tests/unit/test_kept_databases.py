"""The e2e shops' databases: in the test's temporary directory, or, with KEYSHOP_E2E_DB_DIR set (CI),
each in a fresh directory of its own there, named after the test, for ``keyshop ledger check``."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.e2e.conftest import KEEP_DB_DIR, database_dir


def _request(nodeid: str) -> Any:
    return SimpleNamespace(node=SimpleNamespace(nodeid=nodeid))


def test_without_the_variable_the_database_stays_in_the_tests_temporary_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(KEEP_DB_DIR, raising=False)
    assert database_dir(tmp_path, _request("tests/e2e/test_x.py::test_y")) == tmp_path
    monkeypatch.setenv(KEEP_DB_DIR, "")
    assert database_dir(tmp_path, _request("tests/e2e/test_x.py::test_y")) == tmp_path


def test_with_the_variable_each_test_gets_a_fresh_directory_of_its_own_named_after_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    kept = tmp_path / "kept"
    monkeypatch.setenv(KEEP_DB_DIR, str(kept))
    en = database_dir(tmp_path, _request("tests/e2e/test_x.py::test_y[en]"))
    zh = database_dir(tmp_path, _request("tests/e2e/test_x.py::test_y[zh-hans]"))
    assert en.parent == kept and zh.parent == kept and en != zh
    assert en.name == "tests_e2e_test_x.py_test_y_en" and en.is_dir()
    (en / "shop.db").write_bytes(b"an earlier run's")
    again = database_dir(tmp_path, _request("tests/e2e/test_x.py::test_y[en]"))
    assert again == en and list(again.iterdir()) == []  # never an earlier run's database checked as this
