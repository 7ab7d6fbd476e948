import json
from pathlib import Path

import numpy as np
import pytest

from camu_lightning.data.splits import class_forget, draw_sample_set, make_split, random_forget, read_forget_indices


def test_random_split_is_disjoint_covers_train_and_has_floor_size() -> None:
    forget = random_forget(1000, 0.137, seed=3)
    split = make_split(forget, 1000, forget_repeat=1, seed=3)
    assert len(split.forget) == 137
    assert np.intersect1d(split.forget, split.remain).size == 0
    assert np.array_equal(np.union1d(split.forget, split.remain), np.arange(1000))
    assert len(split.sample) == 137 and len(np.unique(split.sample)) == 137
    assert np.isin(split.sample, split.remain).all()


def test_same_seed_same_split_other_seed_other_split() -> None:
    first, again, other = (make_split(random_forget(500, 0.1, s), 500, 1, s) for s in (0, 0, 1))
    assert np.array_equal(first.forget, again.forget) and np.array_equal(first.sample, again.sample)
    assert not np.array_equal(first.forget, other.forget)


def test_class_removal_takes_every_sample_of_the_classes() -> None:
    labels = np.array([0, 1, 2, 0, 1, 2, 2, 0])
    assert class_forget(labels, [0], 3).tolist() == [0, 3, 7]
    assert class_forget(labels, [2, 1], 3).tolist() == [1, 2, 4, 5, 6]
    split = make_split(class_forget(labels, [0], 3), 8, 1, seed=0, forget_classes=(0,))
    assert set(labels[split.sample]) <= {1, 2}


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        ([10], r"data.forget_classes \[10\] out of range; classes are 0..9"),
        ([-1], "out of range"),
        ([1, 1], "duplicates"),
    ],
)
def test_bad_classes_are_refused(classes, message) -> None:
    with pytest.raises(ValueError, match=message):
        class_forget(np.arange(20) % 10, classes, 10)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_fraction_outside_open_unit_interval_is_refused(fraction) -> None:
    with pytest.raises(ValueError, match=r"data.forget_fraction must be in \(0, 1\)"):
        random_forget(100, fraction, 0)


def test_empty_forget_or_remain_set_is_refused() -> None:
    with pytest.raises(ValueError, match="the forget set is empty"):
        make_split(random_forget(5, 0.1, 0), 5, 1, 0)
    with pytest.raises(ValueError, match="the remain set is empty"):
        make_split(class_forget(np.zeros(6, int), [0], 2), 6, 1, 0)


def test_sample_set_past_remain_size_joins_permutations() -> None:
    remain = np.arange(10, 20)
    sample = draw_sample_set(remain, 25, seed=0)
    assert len(sample) == 25
    for start in (0, 10):
        assert sorted(sample[start : start + 10]) == remain.tolist()


@pytest.mark.parametrize("suffix", [".json", ".npy", ".txt"])
def test_forget_indices_files_round_trip(tmp_path: Path, suffix: str) -> None:
    indices = [7, 3, 11]
    path = tmp_path / f"forget{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(indices))
    elif suffix == ".npy":
        np.save(path, np.array(indices))
    else:
        path.write_text("\n".join(map(str, indices)))
    assert read_forget_indices(path, 20).tolist() == [3, 7, 11]


def test_saved_split_json_feeds_back(tmp_path: Path) -> None:
    split = make_split(random_forget(50, 0.2, 4), 50, 1, 4)
    (tmp_path / "split.json").write_text(json.dumps(split.as_lists()))
    again = make_split(read_forget_indices(tmp_path / "split.json", 50), 50, 1, 4)
    assert np.array_equal(again.forget, split.forget) and np.array_equal(again.sample, split.sample)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("forget.json", "[1, 1]", "data.forget_indices has duplicate indices"),
        ("forget.json", "[0, 20]", "data.forget_indices has 1 indices outside 0..19"),
        ("forget.json", '["a"]', "data.forget_indices must be a flat list of integers"),
        ("forget.json", "{", "is not a list of training indices (Expecting property name"),
        ("forget.json", "[[1, 2], [3]]", "is not a list of training indices (setting an array element"),
        ("forget.json", '{"remain": [1]}', "is not a list of training indices (a .json object needs a 'forget' list"),
        ("forget.txt", "3\nseven\n", "is not a list of training indices ("),
        ("forget.npy", None, "is not a list of training indices (Object arrays cannot be loaded"),
    ],
    ids=["duplicate", "out-of-range", "strings", "bad-json", "nested", "dict-without-forget", "bad-txt", "object-npy"],
)
def test_bad_forget_indices_are_refused_naming_the_setting(tmp_path: Path, name, content, message) -> None:
    path = tmp_path / name
    if content is None:
        np.save(path, np.array([1, "x"], dtype=object), allow_pickle=True)
    else:
        path.write_text(content)
    with pytest.raises(ValueError) as error:
        read_forget_indices(path, 20)
    text = str(error.value)
    assert "\n" not in text and text.startswith("data.forget_indices") and message in text, text
