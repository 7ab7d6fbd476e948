"""The channels-last memory layout for every convolution of a run, as a Lightning callback."""

from __future__ import annotations

import lightning as L
import torch


class ChannelsLast(L.Callback):
    """Stores the module's 4-D weights (the unlearned network and its frozen copies) channels-last (NHWC).

    The same math in another memory order, so results differ by float rounding only. oneDNN on CPU and cuDNN on
    tensor cores run NHWC convolutions and pools faster: on this project's 2-core CPU the MNIST CaMU loop gains
    about a third (`make bench-speed`). A convolution with a channels-last weight gives a channels-last output
    whatever its input's layout, so batches need no conversion. Applied to the run's own Trainer only: the
    original model is trained (and cached) in the default layout. Networks a method builds after setup (SISA's
    shards) keep the default layout.

    Add it with `--trainer.callbacks+=camu_lightning.ChannelsLast`.
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        pl_module.to(memory_format=torch.channels_last)
