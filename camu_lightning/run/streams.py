"""The method's data request served by the data module: a Lightning callback, so that a plain
`trainer.fit(method, datamodule=data)` with it needs no handshake of its own."""

from __future__ import annotations

import lightning as L

from camu_lightning.data import UnlearningDataModule


class ServeStreams(L.Callback):
    """At setup, before any loader exists: the training streams the module names (`train_streams()`) go to the data
    module's `request`, and the loaders of its one-off passes (`pass_streams()`) to the method's `take_passes`.

    Any module with `train_streams()` is served (a method, or a helper module such as Unroll's recorder); the method
    never reads the data module and the data module never calls the method.
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":  # evaluation and prediction read the data module's own loaders
            return
        datamodule = trainer.datamodule
        if not isinstance(datamodule, UnlearningDataModule):
            raise ValueError(
                "the unlearning callbacks need the run's UnlearningDataModule: call "
                "trainer.fit(method, datamodule=data), not fit with dataloaders"
            )
        datamodule.request(pl_module.train_streams())
        if hasattr(pl_module, "take_passes"):
            pl_module.take_passes(datamodule.pass_loaders(pl_module.pass_streams()))
