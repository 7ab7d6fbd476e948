"""The grid's kept originals: the weights every row of a dataset starts from, committed beside the rows
(`results/originals/`, entries of the cache's `original` kind, a few MB each). Training the original is not bitwise
portable across machines (MNIST's tested 98.98 % on two machines, 99.01 % on others), so a machine that trained its
own would start its rows from other weights than the committed rows; `camu bench` puts the kept ones into the runs'
cache first, and `camu report` refuses a dataset whose rows name two originals."""

from __future__ import annotations

import shutil
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from camu_lightning.utils.files import atomic_write

KEPT = "originals"  # under the results folder


def seed_caches(results: Path, cache_dirs: set[Path]) -> list[Path]:
    """Copy each kept original into every cache folder the grid's runs use, where that entry is missing; the
    entries copied."""
    copied = []
    for kept in sorted((results / KEPT).glob("*.pt")):
        for cache in sorted(cache_dirs):
            target = cache / "original" / kept.name  # the file name is the entry's key: the same settings
            if not target.exists():
                atomic_write(target, lambda temporary, source=kept: shutil.copyfile(source, temporary))
                copied.append(target)
    return copied


def check_one_original(rows: list[dict[str, Any]]) -> None:
    """Refuse rows of one dataset that started from different originals (by their `original_digest`; rows made
    before it was recorded name none and pass)."""
    digests: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        if digest := row["metrics"].get("original_digest"):
            digests[row["dataset"]][digest] += 1
    for dataset, counts in sorted(digests.items()):
        if len(counts) > 1:
            named = ", ".join(f"{digest[:12]} ({count} rows)" for digest, count in counts.most_common())
            raise ValueError(
                f"the {dataset} rows start from {len(counts)} different originals: {named}; rerun the rows of all but "
                f"the kept one (results/{KEPT}/) so every table compares methods from one original"
            )
