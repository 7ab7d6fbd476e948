"""What a data module's cache keys name: the dataset (by name, or by content for a user's file or datasets), the
input normalisation and the forget set. Paths never enter a key."""

from __future__ import annotations

import hashlib

import numpy as np

from camu_lightning.data.datasets import ImageArrays
from camu_lightning.data.splits import ForgetSplit


def dataset_identity(name: str | None, arrays: ImageArrays) -> str:
    """The dataset's name, or for a user's .npz file or datasets their content hash."""
    if name is None:
        digest = hashlib.sha256()
        for tensor in (arrays.x_train, arrays.y_train, arrays.x_test, arrays.y_test):
            digest.update(tensor.contiguous().numpy().tobytes())
        return f"datasets:{digest.hexdigest()}"
    if not name.endswith(".npz"):
        return name
    digest = hashlib.sha256()
    with open(name, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"npz:{digest.hexdigest()}"


def pipeline_identity(pipeline: str, mean: list[float] | None, std: list[float] | None) -> str:
    """The pipeline's name; with a normalisation of the user's, that too (the dataset's own follows from its name,
    so keys made before `mean`/`std` existed stay valid)."""
    if mean is None:
        return pipeline
    return f"{pipeline}:mean={[float(v) for v in mean]}:std={[float(v) for v in std]}"


def split_identity(split: ForgetSplit, num_train: int) -> str:
    """A hash of the forget set, pairing runs on the same split (e.g. a method with its Retrain)."""
    digest = hashlib.sha256(np.ascontiguousarray(split.forget, dtype=np.int64).tobytes())
    return f"{num_train}:{digest.hexdigest()}"
