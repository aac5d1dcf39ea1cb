"""Every notebook in docs/notebooks executes top to bottom, on small generated data with one epoch,
through the script that re-executes them on the real data (scripts/run_notebooks.py)."""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from tests.conftest import REPO

NOTEBOOKS = sorted((REPO / "docs" / "notebooks").glob("*.ipynb"))


def _runner():
    spec = importlib.util.spec_from_file_location("run_notebooks", REPO / "scripts" / "run_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_every_notebook_executes_on_tiny_data(data_dir: Path, tmp_path: Path):
    runner = _runner()

    def run(path: Path) -> str:
        try:
            runner.execute(path, tmp_path / path.name, tmp_path / "work" / path.stem, {"EPOCHS": "1", "LIMIT": "64"},
                           timeout=300)
        except Exception as e:  # the cell that failed and its error
            return f"{path.name}: {type(e).__name__}: {str(e)[-1500:]}"
        return ""

    with ThreadPoolExecutor(max_workers=2) as pool:  # two kernels at a time: start-up dominates
        failures = [f for f in pool.map(run, NOTEBOOKS) if f]
    assert not failures, "\n".join(failures)
    for path in NOTEBOOKS:
        code = [c for c in nbformat.read(tmp_path / path.name, as_version=4).cells if c.cell_type == "code"]
        assert all(c.execution_count for c in code), path.name
        record = "".join(o.get("text", "") for o in code[-1].outputs)
        assert "'cnnzoo_commit'" in record and "'wall_time_min'" in record, path.name


def test_committed_notebooks_show_full_runs_and_stay_small():
    assert [p.stem[:3] for p in NOTEBOOKS] == ["000", "001", "002", "003", "004"]
    for path in NOTEBOOKS:
        assert path.stat().st_size <= 1_100_000, path.name
        cells = nbformat.read(path, as_version=4).cells
        parameters = next(c for c in cells if "parameters" in c.metadata.get("tags", []))
        assert "LIMIT = None" in parameters.source, path.name  # the full data, not the test's
