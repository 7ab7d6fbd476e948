"""Comparisons that know a tie: the paired interval against scipy's one-sample t-test, tied and surely-apart
verdicts from hand-built rows, shared ranks, and the retraining floor."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from camu_lightning import UnlearningDataModule
from camu_lightning.bench.grid import cells, read_grid
from camu_lightning.bench.paired import paired, paired_interval, retrain_floor, shared_places
from camu_lightning.bench.summary import summary_section


def rows(*values: float) -> dict[int, dict]:
    return {seed: {"avg_gap": value} for seed, value in enumerate(values, 1)}


def test_the_interval_is_scipys_one_sample_t_interval_of_the_differences() -> None:
    differences = [0.31, -0.12, 0.47, 0.18, 0.40]
    found = paired_interval(differences)
    reference = stats.ttest_1samp(differences, 0.0).confidence_interval(0.95)
    assert found.mean == pytest.approx(np.mean(differences))
    assert (found.low, found.high) == pytest.approx((reference.low, reference.high))
    # By hand: mean 0.248, sd (ddof 1) 0.2325, sem 0.1040, t_{0.975, 4} = 2.776: 0.248 ± 0.2887.
    assert (found.low, found.high) == pytest.approx((0.248 - 0.2887, 0.248 + 0.2887), abs=1e-3)
    assert found.verdict == "tied" and found.n == 5
    one = paired_interval([0.4])
    assert one.verdict == "tied" and math.isinf(one.low) and math.isinf(one.high)  # one seed decides nothing


def test_tied_where_the_interval_holds_zero_and_closer_where_it_does_not() -> None:
    camu = rows(0.30, 0.35, 0.28)
    assert paired(camu, rows(0.50, 0.56, 0.47)).verdict == "closer"  # -0.20, -0.21, -0.19
    assert paired(camu, rows(0.10, 0.14, 0.09)).verdict == "farther"
    assert paired(camu, rows(0.20, 0.50, 0.30)).verdict == "tied"  # +0.10, -0.15, -0.02
    assert paired(camu, rows(0.20, 0.50)).n == 2  # seeds both have
    places = shared_places({"camu": camu, "a": rows(0.20, 0.50, 0.30), "b": rows(0.50, 0.56, 0.47)})
    assert places == {"camu": 1, "a": 1, "b": 2}  # b is surely behind CaMU; a is tied with both


def test_the_floor_is_the_gap_between_the_class_removal_retrains_and_the_summary_shows_it() -> None:
    numbers = [(99.0, 50.0), (98.4, 50.6), (99.3, 49.7)]  # acc_test_remain, mia of seeds 1-3
    retrain = {seed: {"acc_test_remain": r, "acc_test_forget": 0.0, "mia": m, "acc_forget": 0.0, "acc_remain": r,
                      "acc_test": r, "time_unlearn_s": 10.0} for seed, (r, m) in enumerate(numbers, 1)}  # fmt: skip
    floor = retrain_floor(retrain, class_removal=True)
    # Pairs (1, 2), (1, 3), (2, 3): mean |gap| over acc_test_remain, acc_test_forget, mia.
    assert floor == pytest.approx([(0.6 + 0 + 0.6) / 3, (0.3 + 0 + 0.3) / 3, (0.9 + 0 + 0.9) / 3])
    assert retrain_floor(retrain, class_removal=False) == []  # random removal: each seed forgets other samples
    grouped = {("mnist", "class0"): {
        "retrain": retrain,
        "sisa": rows(0.30, 0.25, 0.35),  # below the floor's mean 0.4: as close as another Retrain
        "ngrad": rows(2.0, 2.5, 2.2),
    }}  # fmt: skip
    lines = summary_section(grouped)
    sisa = next(line for line in lines if line.startswith("| SISA"))
    assert "1. 0.30 ± 0.04 (within the floor)" in sisa
    floor_row = next(line for line in lines if line.startswith("| Retrain vs Retrain (the floor)"))
    assert "0.40 ± 0.16 (3 pairs of Retrain seeds)" in floor_row


def test_a_retrain_of_another_init_is_the_floor_where_the_grid_ran_it() -> None:
    grouped = {("mnist", "random"): {
        "retrain": rows(0.0, 0.0),
        "retrain_anotherinit": rows(0.40, 0.60),  # its avg_gap to the same seed's Retrain (per_seed's gaps)
        "sisa": rows(0.30, 0.45),
        "ngrad": rows(1.0, 1.2),
    }}  # fmt: skip
    lines = summary_section(grouped)
    floor_row = next(line for line in lines if line.startswith("| Retrain vs Retrain (the floor)"))
    assert floor_row == "| Retrain vs Retrain (the floor) | 0.50 ± 0.10 (2 seeds, a Retrain of another init) |"
    assert "(within the floor)" in next(line for line in lines if line.startswith("| SISA"))
    assert not any(line.startswith("| Retrain (another init)") for line in lines)  # the floor, not a contestant


def test_another_init_runs_each_seed_on_its_own_split_as_another_seed(tmp_path: Path, tiny_npz: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    grid = tmp_path / "floor.yaml"
    grid.write_text(yaml.safe_dump({"datasets": ["mnist"], "scenarios": ["random"], "methods": ["retrain"],
                                    "seeds": [2], "another_init": 1000}))  # fmt: skip
    (floor,) = cells(read_grid(grid), repo / "configs")
    plain = next(c for c in cells(read_grid(repo / "configs/bench/paper.yaml"), repo / "configs")
                 if c.row.as_posix() == "mnist/random/retrain/seed2.json")  # fmt: skip
    assert floor.row.as_posix() == "mnist/random/retrain_anotherinit/seed2.json"
    command = floor.command(tmp_path)
    assert command[command.index("--seed_everything") + 1] == "1002"
    assert command[command.index("--data.forget_split_seed") + 1] == "2"
    assert floor.config_hash != plain.config_hash
    settings = {"dataset": str(tiny_npz), "forget_fraction": 0.2}
    reference = UnlearningDataModule(**settings, split_seed=2).split.forget
    another = UnlearningDataModule(**settings, split_seed=1002, forget_split_seed=2).split.forget
    assert np.array_equal(another, reference)  # the same D_f, so the same D_r
    assert not np.array_equal(UnlearningDataModule(**settings, split_seed=1002).split.forget, reference)
