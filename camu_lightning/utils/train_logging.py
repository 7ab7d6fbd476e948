"""Training-step values logged on the batches whose step metrics the Trainer writes, not on every batch."""

from __future__ import annotations

import lightning as L
from torch import Tensor

from camu_lightning.utils.lightning_private import batches_seen


def log_train_values(module: L.LightningModule, values: dict[str, Tensor], prog_bar: bool = False) -> None:
    """`module.log_dict(values)` (step values) on every `log_every_n_steps`-th batch, where the Trainer writes them.

    Why not on every batch: Lightning's `self.log` costs about 0.6 ms per value on CPU (each call moves its
    record to the value's device through a deep copy of the record's metadata), which is 8 % of a CaMU step
    logging four terms and 7 % of a batch-32 MNIST training step, yet the Trainer only writes step metrics
    every `log_every_n_steps` batches. This logs exactly on those batches (the Trainer writes after batch b
    when (b + 1) is a multiple of log_every_n_steps), so the written series is the same.
    """
    every = module.trainer.log_every_n_steps
    if every and (batches_seen(module.trainer) + 1) % every == 0:
        module.log_dict({name: value.detach() for name, value in values.items()}, prog_bar=prog_bar)
