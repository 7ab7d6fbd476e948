"""Move rows to the grid key of the resolved run: rows written before it hashed their config file's text.

    python -m camu_lightning.bench.migrate --grid configs/bench/paper.yaml [--grid ...] [--results results]

For each cell of the grids that has a row, the row's stored hash must equal the old hash of the cell as its config
stands now: that proves the row's settings (its config file's text, its overrides, its seed) are the ones its cell
gives today. Such a row gets the new key (`keys.run_key`) and nothing else changes; a row whose old hash does not
match is named and left alone (it was stale under the old rule: `camu bench` reruns it). Run it once, before any
config is rewritten, since the old hash reads the config file's text.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from camu_lightning import __version__
from camu_lightning.bench.aggregate import read_row
from camu_lightning.bench.grid import Cell, cells, read_grid
from camu_lightning.utils.config_files import read_config
from camu_lightning.utils.files import write_json
from camu_lightning.utils.terminal import console, one_line_errors


def file_text_hash(cell: Cell) -> str:
    """The hash rows held before the run key: the config file's settings (its `tune:` ranges left out), the
    overrides but data.root, the seed, the another-init offset where set, and the package's major version."""
    settings = read_config(cell.config)
    settings.pop("tune", None)
    kept, skip = [], False
    for option in cell.overrides:
        if skip or option.startswith("--data.root"):
            skip = option == "--data.root"
            continue
        kept.append(option)
    identity: dict[str, Any] = {"config": settings, "overrides": kept, "seed": cell.seed,
                                "major": __version__.split(".")[0]}  # fmt: skip
    if cell.init_offset:
        identity["init_offset"] = cell.init_offset
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:20]


def migrate(grids: list[Path], results: Path, configs: Path) -> tuple[int, int, list[Path]]:
    """(rows moved, rows already on the run key, rows left alone) over every grid's cells."""
    moved, current, left = 0, 0, []
    seen: set[Path] = set()
    for grid in grids:
        for cell in cells(read_grid(grid), configs):
            path = results / cell.row
            if path in seen or not path.is_file():
                continue
            seen.add(path)
            row = read_row(path)
            if row["config_hash"] == cell.config_hash:
                current += 1
            elif row["config_hash"] == file_text_hash(cell):
                write_json(path, row | {"config_hash": cell.config_hash})  # the key order of the row stays
                moved += 1
            else:
                left.append(path)
    return moved, current, left


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m camu_lightning.bench.migrate", description=__doc__.split("\n")[0])
    parser.add_argument("--grid", type=Path, action="append", required=True, help="a grid YAML (repeatable)")
    parser.add_argument("--results", type=Path, default=Path("results"), help="folder of the committed rows")
    parser.add_argument("--configs", type=Path, default=Path("configs"), help="folder of the method configs")
    options = parser.parse_args(args)
    with one_line_errors():
        moved, current, left = migrate(options.grid, options.results, options.configs)
    console.print(f"rows moved to the run key: {moved}; already on it: {current}; left alone (stale): {len(left)}")
    for path in left:
        console.print(f"  stale, left alone: {path}", highlight=False)


if __name__ == "__main__":
    main()
