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


def provenance_line(rows: list[dict[str, Any]]) -> list[str]:
    """The report's line on where the rows started: per dataset the original's digest and its rows (those whose
    digest was inferred, results/originals/README.md, counted apart), the rows that start from an original they do
    not name (written before the digest was recorded and not matched to the kept one: to be rerun from it), and the
    SISA rows that name no training-time state."""
    named: dict[str, Counter] = defaultdict(Counter)
    inferred, unnamed, stateless = Counter(), Counter(), 0
    for row in rows:
        metrics, dataset = row["metrics"], row["dataset"]
        if digest := metrics.get("original_digest"):
            named[dataset][digest] += 1
            inferred[dataset, digest] += bool(metrics.get("original_digest_inferred"))
        elif "original_source" in metrics:  # written where a run started from an original (run/preparation.py)
            unnamed[dataset] += 1
        elif "original_acc_test" in metrics and "state_digest" not in metrics:
            stateless += 1  # SISA: what it evaluates as its start is its shards
    parts = [
        f"{dataset} " + "".join(f"{digest[:8]}… ({count} rows, {inferred[dataset, digest]} inferred), "
                                for digest, count in named[dataset].most_common()) + f"{unnamed[dataset]} unnamed"
        for dataset in sorted(set(named) | set(unnamed))
    ]  # fmt: skip
    return [
        f"Originals: {'; '.join(parts) or 'no row starts from one'}. An unnamed row was written before rows "
        f"recorded the digest and is not matched to the kept original (`results/originals/`): it awaits a rerun from "
        f"it. SISA rows naming no training-time state: {stateless}.",
        "",
    ]
