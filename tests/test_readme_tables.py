"""README's recipe and model tables say what ``conf/`` says: they are generated from the configs
(``scripts/readme_tables.py``) and this test fails when they drift."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.conftest import REPO


def _script():
    spec = importlib.util.spec_from_file_location("readme_tables", REPO / "scripts" / "readme_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_tables_are_those_of_the_configs():
    assert _script().main(["--check"]) == 0


def test_a_drifted_table_is_caught(tmp_path: Path, capsys):
    readme = (REPO / "README.md").read_text()
    drifted = tmp_path / "README.md"
    drifted.write_text(readme.replace("| `bn_cnn` | 64x64x1 -> 24 | 1,628,056", "| `bn_cnn` | 64x64x1 -> 10 | 1,626,250"))
    assert drifted.read_text() != readme
    assert _script().main(["--check", "--readme", str(drifted)]) == 1
    assert "differ from conf/" in capsys.readouterr().out
