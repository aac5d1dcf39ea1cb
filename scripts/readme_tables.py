#!/usr/bin/env python
"""Write README's recipe and model tables from ``conf/`` (``--check``: fail if README differs).

Why this script exists: a recipe's facts live in its config alone (``cnnzoo.recipes``); README
shows them, so README's tables are generated here, between ``<!-- recipes:start/end -->`` and
``<!-- models:start/end -->``, never typed.  Parameter counts are those of the network each recipe
trains, sized from its data as ``python -m cnnzoo.train`` sizes it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from cnnzoo.models import summary  # noqa: E402
from cnnzoo.recipes import model_recipes, recipe  # noqa: E402


def _shape(shape) -> str:
    return "x".join(map(str, shape[1:])) + f"x{shape[0]}" if len(shape) == 3 else str(shape[0])


def recipe_table() -> str:
    lines = ["| `model=` | notebook (what it reported) | data | optimizer | batch | epochs | reported on |",
             "|---|---|---|---|---|---|---|"]
    for name in model_recipes():
        r = recipe(name)
        data = r.datamodule()
        split = r.config.data.validation
        validation = {"test": "validates on the test file", None: "no validation split"}.get(
            split, f"`validation: {split}`")
        lines.append(f"| `{name}` | {r.source} | {data.name}, {validation} | {r.optimizer['name']} "
                     f"(lr {r.optimizer['lr']:g}) | {r.batch_size} | {r.epochs} | {r.split} |")
    return "\n".join(lines)


def model_table() -> str:
    lines = ["| `model=` | input -> classes (as the recipe trains it) | params (trainable / non-trainable) |",
             "|---|---|---|"]
    for name in model_recipes():
        net = recipe(name).network()
        s = summary(net)
        split = f" ({s.trainable:,} / {s.non_trainable:,})" if s.non_trainable else ""
        lines.append(f"| `{name}` | {_shape(net.input_shape)} -> {net.num_classes} | {s.total:,}{split} |")
    return "\n".join(lines)


def render(readme: str) -> str:
    """``readme`` with both tables replaced by what the configs say."""
    for marker, table in (("recipes", recipe_table()), ("models", model_table())):
        pattern = re.compile(rf"(<!-- {marker}:start -->\n).*?(<!-- {marker}:end -->)", re.S)
        if not pattern.search(readme):
            raise SystemExit(f"README.md: no <!-- {marker}:start --> ... <!-- {marker}:end --> block")
        readme = pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), readme)
    return readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md's tables are not current")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    new = render(text)
    if args.check:
        if new != text:
            print(f"{args.readme}: the recipe/model tables differ from conf/; run python scripts/readme_tables.py")
            return 1
        return 0
    args.readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
