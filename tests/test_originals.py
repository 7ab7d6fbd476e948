"""The grid's kept originals: copied into the runs' caches where missing, a report refuses a dataset whose rows
started from two of them and counts the rows per original."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from camu_lightning.bench.grid import cells, read_grid
from camu_lightning.bench.originals import check_one_original, provenance_line, seed_caches

REPO = Path(__file__).resolve().parents[1]


def test_kept_originals_fill_the_caches_where_they_lack_them_and_never_overwrite(tmp_path: Path) -> None:
    kept = tmp_path / "results" / "originals"
    kept.mkdir(parents=True)
    (kept / "abc.pt").write_bytes(b"kept weights")
    own = tmp_path / "cache_b" / "original" / "abc.pt"
    own.parent.mkdir(parents=True)
    own.write_bytes(b"this machine's")
    copied = seed_caches(tmp_path / "results", {tmp_path / "cache_a", tmp_path / "cache_b"})
    assert copied == [tmp_path / "cache_a" / "original" / "abc.pt"]
    assert copied[0].read_bytes() == b"kept weights" and own.read_bytes() == b"this machine's"
    assert seed_caches(tmp_path / "results", {tmp_path / "cache_a"}) == []  # there already


def test_a_cells_cache_is_its_option_else_its_configs(tmp_path: Path) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"blocks": [
        {"datasets": ["mnist"], "scenarios": ["random"], "methods": ["retrain"], "seeds": [1]},
        {"datasets": ["mnist"], "scenarios": ["random"], "methods": ["ngrad"], "seeds": [1],
         "overrides": ["--cache_dir", str(tmp_path / "elsewhere")]},
    ]}))  # fmt: skip
    plain, moved = cells(read_grid(grid), REPO / "configs")
    assert plain.cache_dir == Path("camu_cache") and moved.cache_dir == tmp_path / "elsewhere"


def test_rows_of_one_dataset_from_two_originals_are_refused_in_one_line() -> None:
    def row(dataset: str, digest: str | None) -> dict:
        return {"dataset": dataset, "metrics": {} if digest is None else {"original_digest": digest}}

    check_one_original([row("mnist", "a" * 64), row("mnist", "a" * 64), row("mnist", None), row("fashion", "b" * 64)])
    with pytest.raises(ValueError) as error:
        check_one_original([row("mnist", "a" * 64), row("mnist", "a" * 64), row("mnist", "c" * 64)])
    assert str(error.value) == (
        f"the mnist rows start from 2 different originals: {'a' * 12} (2 rows), {'c' * 12} (1 rows); rerun the rows "
        "of all but the kept one (results/originals/) so every table compares methods from one original"
    )


def test_the_reports_provenance_line_counts_rows_per_original_and_those_naming_none() -> None:
    def row(dataset: str, **metrics) -> dict:
        return {"dataset": dataset, "metrics": {"original_acc_test": 99.0} | metrics}

    rows = [
        row("mnist", original_source="cache", original_digest="a" * 64),
        row("mnist", original_source="cache", original_digest="a" * 64, original_digest_inferred=True),
        row("mnist", original_source="cache"),  # written before the digest was recorded
        row("fashion", original_source="cache"),
        row("fashion", state_digest="s" * 64),  # SISA, naming its state
        row("fashion"),  # SISA, naming none
        {"dataset": "mnist", "metrics": {"acc_test": 98.0}},  # Retrain: starts from no model
    ]
    assert provenance_line(rows)[0] == (
        f"Originals: fashion 1 unnamed; mnist {'a' * 8}… (2 rows, 1 inferred), 1 unnamed. An unnamed row was written "
        "before rows recorded the digest and is not matched to the kept original (`results/originals/`): it awaits a "
        "rerun from it. SISA rows naming no training-time state: 1."
    )
