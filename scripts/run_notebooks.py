#!/usr/bin/env python
"""Execute the seed notebooks redone with cnnzoo (``docs/notebooks/*.ipynb``) top to bottom.

    CNNZOO_DATA_DIR=/work/shared/data python scripts/run_notebooks.py            # full runs, in place
    python scripts/run_notebooks.py --only 001 --out /tmp/nb                       # one, elsewhere
    python scripts/run_notebooks.py --set EPOCHS=1 LIMIT=64 --out /tmp/nb          # tiny (the test's way)

Why this script exists: a committed notebook must show what the code really does, so each one is
re-executed here (nbclient, a fresh kernel per notebook) and written back with its outputs only once
it ran through; a failing cell leaves the committed notebook untouched.  ``--set`` replaces the
values of the cell tagged ``parameters`` (``tests/test_notebooks.py`` runs every notebook this way
on small generated data, so no notebook can rot).  Runs write their checkpoints under ``--workdir``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "docs" / "notebooks"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from cnnzoo.atomic import atomic_path  # noqa: E402


def with_parameters(notebook, values: dict[str, str]):
    """``notebook`` with the ``parameters`` cell's assignments replaced by ``values``."""
    cell = next((c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])), None)
    if cell is None:
        raise SystemExit("a notebook has no cell tagged 'parameters'")
    lines = [line for line in cell.source.splitlines() if line.split("=")[0].strip() not in values]
    cell.source = "\n".join([*lines, *(f"{name} = {value}" for name, value in values.items())])
    return notebook


def execute(path: Path, out: Path, workdir: Path, values: dict[str, str], timeout: int = 7200) -> float:
    """Run ``path`` in a fresh kernel with cwd ``workdir``; write the executed notebook to ``out``."""
    import nbformat
    from nbclient import NotebookClient

    notebook = with_parameters(nbformat.read(path, as_version=4), values)
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    with atomic_path(out) as tmp:
        nbformat.write(notebook, tmp)
    return time.time() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=[], help="notebook name prefixes (e.g. 001)")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="parameters cell values")
    parser.add_argument("--out", type=Path, default=NOTEBOOKS, help="folder for the executed notebooks")
    parser.add_argument("--workdir", type=Path, default=REPO / "outputs" / "notebooks")
    args = parser.parse_args(argv)
    values = dict(item.split("=", 1) for item in args.set)
    paths = [p for p in sorted(NOTEBOOKS.glob("*.ipynb")) if not args.only or p.name.startswith(tuple(args.only))]
    for path in paths:
        seconds = execute(path, args.out / path.name, args.workdir, values)
        size = (args.out / path.name).stat().st_size
        print(f"{path.name}: ran in {seconds / 60:.1f} min, {size / 1e6:.2f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
