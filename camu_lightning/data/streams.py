"""The training streams a method can ask for, by name.

| name | rows | transform | extra columns |
|---|---|---|---|
| `train` | all training samples | train | |
| `remain` | D_r | train | |
| `forget` | D_f | train | |
| `forget_fixed` | D_f | eval (fixed inputs, e.g. for an attack on them) | `index` |
| `train_fixed` | D_r, then D_f (the whole training set) | eval | |
| `test_fixed` | the test set (held out: SCRUB+R's reference error, which so touches test data) | eval | |
| `remain_sample` | S | train | `index` when the input is fixed (no augmentation) |
| `counterfactual` | CaMU tuples (built by the data module) | frozen at build | `index` |
| `flagged_mixture` | D_f plus floor(remain_fraction * |D_r|) of D_r, drawn once per run | train | `flag` (1 = forget) |
| `forget_then_remain` | every D_f batch, then every D_r batch, each part reshuffled per epoch | train | `is_forget` |
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from camu_lightning.data.counterfactual import CounterfactualTuples
from camu_lightning.data.datasets import ImageArrays
from camu_lightning.data.rows import ImageRows, TensorRows
from camu_lightning.data.splits import MIXTURE_STREAM, PARTS_STREAM, ForgetSplit, seeded_rng
from camu_lightning.data.transforms import InputPipeline

STREAM_NAMES = (
    "train",
    "remain",
    "forget",
    "forget_fixed",
    "train_fixed",
    "test_fixed",
    "remain_sample",
    "counterfactual",
    "flagged_mixture",
    "forget_then_remain",
)


@dataclass(frozen=True)
class Stream:
    """What a method asks of one training stream.

    Args:
        batch_size: rows per batch (the remain part's, for `forget_then_remain`).
        forget_batch_size: the forget part's batch size, for `forget_then_remain`.
        remain_fraction: share of D_r mixed with D_f, for `flagged_mixture`.
    """

    batch_size: int
    forget_batch_size: int | None = None
    remain_fraction: float | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1 or (self.forget_batch_size is not None and self.forget_batch_size < 1):
            raise ValueError(f"batch sizes must be >= 1, got {self.batch_size} / {self.forget_batch_size}")
        if self.remain_fraction is not None and not 0 <= self.remain_fraction <= 1:
            raise ValueError(f"remain_fraction must be in [0, 1], got {self.remain_fraction}")


class PartsBatchSampler(DistributedSampler):
    """Batches of consecutive parts of a dataset, part after part, each part shuffled afresh per epoch, sharded
    by batch across ranks.

    Positions 0..sizes[0]-1 form part 0, the next sizes[1] positions part 1, and so on; part k is cut into
    batches of batch_sizes[k] (the last one may be short) in an order drawn from (seed, epoch, k), the same on
    every rank. Rank r takes batches r, r + W, ... of each part, wrapping round so that every rank has as many
    batches of each part as the others: under DDP the ranks step together, each in the same part.

    It yields whole batches (use it as a DataLoader's `sampler` with `batch_size=None`) and is a
    `DistributedSampler`, so Lightning injects no sampler of its own and sets its epoch.
    """

    def __init__(
        self, dataset: Dataset, sizes: list[int], batch_sizes: list[int], seed: int, num_replicas: int, rank: int
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        assert sum(sizes) == len(dataset), f"parts of {sum(sizes)} rows over a dataset of {len(dataset)}"
        self.sizes, self.batch_sizes = sizes, batch_sizes
        self.offsets = np.cumsum([0, *sizes[:-1]]).tolist()

    def __iter__(self) -> Iterator[list[int]]:
        for part, (offset, size, batch_size) in enumerate(zip(self.offsets, self.sizes, self.batch_sizes, strict=True)):
            seed = int(seeded_rng(self.seed, PARTS_STREAM, self.epoch, part).integers(2**62))
            generator = torch.Generator().manual_seed(seed)
            order = (torch.randperm(size, generator=generator) + offset).tolist()
            batches = [order[start : start + batch_size] for start in range(0, size, batch_size)]
            for step in range(self.batches_per_rank(size, batch_size)):
                yield batches[(self.rank + step * self.num_replicas) % len(batches)]

    def batches_per_rank(self, size: int, batch_size: int) -> int:
        batches = math.ceil(size / batch_size)
        return math.ceil(batches / self.num_replicas)

    def __len__(self) -> int:
        return sum(self.batches_per_rank(size, batch) for size, batch in zip(self.sizes, self.batch_sizes, strict=True))


def stream_dataset(
    name: str,
    request: Stream,
    arrays: ImageArrays,
    split: ForgetSplit,
    pipeline: InputPipeline,
    seed: int,
    tuples: Callable[[], CounterfactualTuples] | None = None,
) -> Dataset:
    """The dataset behind a named stream; `tuples` builds the CaMU tuples for the `counterfactual` stream."""
    train = pipeline.train
    forget, remain = torch.from_numpy(split.forget), torch.from_numpy(split.remain)

    def rows(indices: torch.Tensor, transform=train, **kwargs) -> ImageRows:
        return ImageRows(arrays.x_train, arrays.y_train, indices, transform, **kwargs)

    if name == "train":
        return rows(torch.arange(len(arrays.y_train)))
    if name == "remain":
        return rows(remain)
    if name == "forget":
        return rows(forget)
    if name == "forget_fixed":
        return rows(forget, pipeline.eval, with_position=True)
    if name == "train_fixed":
        return rows(torch.cat([remain, forget]), pipeline.eval)
    if name == "test_fixed":
        return ImageRows(arrays.x_test, arrays.y_test, torch.arange(len(arrays.y_test)), pipeline.eval)
    if name == "remain_sample":
        # Positions are exposed only when a sample's input is fixed, so a method may cache frozen outputs.
        return rows(torch.from_numpy(split.sample), with_position=not pipeline.augments)
    if name == "counterfactual":
        built = tuples()
        return TensorRows(
            {
                "x_forget": built.x_forget,
                "y_forget": built.y_forget,
                "x_counterfactual": built.x_counterfactual,
                "y_counterfactual": built.y_counterfactual,
            }
        )
    if name == "flagged_mixture":
        count = int(np.floor(request.remain_fraction * len(split.remain)))
        drawn = seeded_rng(seed, MIXTURE_STREAM).choice(split.remain, count, replace=False)
        flag = torch.cat([torch.ones(len(forget)), torch.zeros(count)])
        return rows(torch.cat([forget, torch.from_numpy(np.sort(drawn))]), columns={"flag": flag})
    if name == "forget_then_remain":
        is_forget = torch.cat([torch.ones(len(forget), dtype=torch.bool), torch.zeros(len(remain), dtype=torch.bool)])
        return rows(torch.cat([forget, remain]), columns={"is_forget": is_forget})
    raise ValueError(f"unknown training stream '{name}'; choose from: {', '.join(STREAM_NAMES)}")
