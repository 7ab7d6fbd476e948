"""Datasets that hand out whole batches of in-memory tensors.

`DataLoader` calls `__getitems__` with a batch of positions, so a batch is one index selection and one
batched transform instead of per-sample Python objects; `collate_batch` passes the result through untouched.
The position list comes from the loader's sampler, so shuffling, seeding and Lightning's distributed sampler
work as usual.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.utils.data import Dataset, DistributedSampler


def collate_batch(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    return batch


class ImageRows(Dataset):
    """Rows of a uint8 image tensor, transformed per batch.

    Args:
        rows: dataset indices of this view's samples; position i of the view is image `rows[i]`.
        columns: extra per-position tensors copied into each batch (e.g. attack roles).
        with_position: add the batch's positions as `index`, for consumers that cache per-sample results;
            only valid when a position's input is the same every epoch.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        rows: Tensor,
        transform: Callable[[Tensor], Tensor],
        columns: dict[str, Tensor] | None = None,
        with_position: bool = False,
    ) -> None:
        self.images, self.labels, self.rows, self.transform = images, labels, rows, transform
        self.columns = columns or {}
        self.with_position = with_position

    def __len__(self) -> int:
        return len(self.rows)

    def __getitems__(self, positions: list[int]) -> dict[str, Tensor]:
        position = torch.as_tensor(positions)
        padding = position >= len(self.rows)  # PaddedEvalSampler's markers: real rows, flagged as repeats
        position = position % len(self.rows)
        row = self.rows[position]
        batch = {"x": self.transform(self.images[row]), "y": self.labels[row]}
        if padding.any():
            batch["is_padding"] = padding
        batch |= {name: column[position] for name, column in self.columns.items()}
        if self.with_position:
            batch["index"] = position
        return batch

    def __getitem__(self, position: int | list[int]) -> dict[str, Tensor]:
        if isinstance(position, list):  # a whole batch from a batch-yielding sampler (PartsBatchSampler)
            return self.__getitems__(position)
        return {name: value[0] for name, value in self.__getitems__([position]).items()}


class TensorRows(Dataset):
    """Rows of ready-made tensors of equal length; each batch also carries its positions as `index`."""

    def __init__(self, columns: dict[str, Tensor]) -> None:
        lengths = {len(column) for column in columns.values()}
        assert len(lengths) == 1, f"columns differ in length: {lengths}"
        self.columns = columns
        self.length = lengths.pop()

    def __len__(self) -> int:
        return self.length

    def __getitems__(self, positions: list[int]) -> dict[str, Tensor]:
        position = torch.as_tensor(positions)
        return {"index": position} | {name: column[position] for name, column in self.columns.items()}

    def __getitem__(self, position: int) -> dict[str, Tensor]:
        return {name: value[0] for name, value in self.__getitems__([position]).items()}


class PaddedEvalSampler(DistributedSampler):
    """Shards evaluation rows across ranks in order, padding every rank to the same batch count (so collective
    ops such as DDP's buffer sync stay in step) with repeats that are flagged, not counted.

    A padding position is emitted as `len(dataset) + i`; `ImageRows` maps it back to row i and marks it in
    `is_padding`, so metrics skip it and each row is counted exactly once across ranks.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)

    def __iter__(self):
        size = len(self.dataset)
        positions = list(range(size)) + [size + i % size for i in range(self.total_size - size)]
        return iter(positions[self.rank : self.total_size : self.num_replicas])
