"""Which training samples to forget, which remain, and the remain sample set S, from an explicit seed.

Each random draw has its own numpy generator built from (split_seed, stream), so changing one choice (say,
naming the forget indices from a file) never changes another (the draw of S from the same remain set).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORGET_STREAM, SAMPLE_STREAM, PAIRING_STREAM, MASK_STREAM, LABEL_STREAM, ATTACK_STREAM, MIXTURE_STREAM = range(7)
PARTS_STREAM, UNROLL_STREAM = 7, 8


def seeded_rng(seed: int, stream: int, *more: int) -> np.random.Generator:
    """An independent generator for one named random choice of a run (`more` tells repeated draws apart)."""
    return np.random.default_rng([seed, stream, *more])


@dataclass(frozen=True)
class ForgetSplit:
    """Index lists into the training set (sorted, except `sample`, which keeps its drawn order)."""

    forget: np.ndarray  # D_f, unique
    remain: np.ndarray  # D_r = train \ D_f
    sample: np.ndarray  # S, |S| = forget_repeat * |D_f|, drawn from D_r
    forget_classes: tuple[int, ...]  # removed classes in class removal, else ()

    def as_lists(self) -> dict[str, list[int]]:
        return {
            "forget": self.forget.tolist(),
            "remain": self.remain.tolist(),
            "sample": self.sample.tolist(),
            "forget_classes": list(self.forget_classes),
        }


def random_forget(num_train: int, fraction: float, seed: int) -> np.ndarray:
    """floor(fraction * N) indices drawn uniformly without replacement."""
    if not 0 < fraction < 1:
        raise ValueError(f"data.forget_fraction must be in (0, 1), got {fraction}")
    count = int(np.floor(fraction * num_train))
    return np.sort(seeded_rng(seed, FORGET_STREAM).permutation(num_train)[:count])


def class_forget(labels: np.ndarray, classes: list[int], num_classes: int) -> np.ndarray:
    """Every training sample of the given classes."""
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad:
        raise ValueError(f"data.forget_classes {bad} out of range; classes are 0..{num_classes - 1}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"data.forget_classes has duplicates: {classes}")
    return np.flatnonzero(np.isin(labels, classes))


def read_forget_indices(path: str | Path, num_train: int) -> np.ndarray:
    """A deletion request: training-set indices from a .json list, a .npy array or a .txt file (one per line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data.forget_indices file {path} does not exist")
    if path.suffix not in (".json", ".npy", ".txt"):
        raise ValueError(f"data.forget_indices must be a .json, .npy or .txt file, got {path.name}")
    try:
        if path.suffix == ".json":
            loaded = json.loads(path.read_text())
            if isinstance(loaded, dict) and "forget" not in loaded:
                raise ValueError("a .json object needs a 'forget' list (as in a run's split.json)")
            indices = np.asarray(loaded["forget"] if isinstance(loaded, dict) else loaded)
        elif path.suffix == ".npy":
            indices = np.load(path, allow_pickle=False)  # object arrays raise: never unpickle a request
        else:
            indices = np.loadtxt(path, dtype=np.int64, ndmin=1)
    except (ValueError, OSError) as error:  # JSONDecodeError is a ValueError, as are ragged lists and bad lines
        first_line = str(error).strip().splitlines()[0]
        raise ValueError(f"data.forget_indices file {path} is not a list of training indices ({first_line})") from error
    if indices.ndim != 1 or (indices.size and not np.issubdtype(indices.dtype, np.integer)):
        raise ValueError(f"data.forget_indices must be a flat list of integers, got {indices.dtype} {indices.shape}")
    indices = indices.astype(np.int64)
    out_of_range = indices[(indices < 0) | (indices >= num_train)]
    if out_of_range.size:
        raise ValueError(
            f"data.forget_indices has {out_of_range.size} indices outside 0..{num_train - 1}, e.g. {out_of_range[0]}"
        )
    if np.unique(indices).size != indices.size:
        raise ValueError("data.forget_indices has duplicate indices")
    return np.sort(indices)


def draw_sample_set(remain: np.ndarray, size: int, seed: int) -> np.ndarray:
    """S: `size` samples of D_r uniformly without replacement; past |D_r|, independent permutations are joined."""
    rng = seeded_rng(seed, SAMPLE_STREAM)
    rounds = -(-size // len(remain))
    return np.concatenate([rng.permutation(remain) for _ in range(rounds)])[:size]


def make_split(
    forget: np.ndarray, num_train: int, forget_repeat: int, seed: int, forget_classes: tuple[int, ...] = ()
) -> ForgetSplit:
    """Complete a forget set into D_f, D_r and S, refusing an empty forget or remain set."""
    if forget.size == 0:
        raise ValueError("the forget set is empty; raise data.forget_fraction or name other classes or indices")
    remain = np.setdiff1d(np.arange(num_train), forget, assume_unique=True)
    if remain.size == 0:
        raise ValueError("the remain set is empty: every training sample would be forgotten")
    if forget_repeat < 1:
        raise ValueError(f"data.forget_repeat must be >= 1, got {forget_repeat}")
    sample = draw_sample_set(remain, forget_repeat * forget.size, seed)
    return ForgetSplit(forget, remain, sample, forget_classes)
