"""Each private Lightning attribute the suite touches still exists and means what lightning_private.py assumes: a
Lightning release that renames one fails here, not in a run."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.strategies import DDPStrategy

from camu_lightning.utils.lightning_private import (
    batches_seen,
    freeze_initial_hparams,
    logger_version_chosen,
    set_logger_version,
    start_method,
)


def test_a_logger_version_set_here_is_the_folder_the_logger_writes(tmp_path: Path) -> None:
    for logger_class in (TensorBoardLogger, CSVLogger):
        logger = logger_class(tmp_path / logger_class.__name__)
        assert not logger_version_chosen(logger)
        set_logger_version(logger, 7)
        assert logger_version_chosen(logger) and logger.version == 7 and logger.log_dir.endswith("version_7")
        assert logger_version_chosen(logger_class(tmp_path, version=3))


def test_the_ddp_start_method_is_read_from_the_strategy() -> None:
    assert start_method(DDPStrategy()) == "popen"
    assert start_method(DDPStrategy(start_method="spawn")) == "spawn"


class Counting(L.LightningModule):
    def __init__(self, width: int = 2) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(width, 1)
        self.seen: list[int] = []

    def training_step(self, batch, batch_idx):
        self.seen.append(batches_seen(self.trainer))
        return self.layer(batch[0]).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_batches_seen_counts_every_batch_of_every_epoch(tmp_path: Path) -> None:
    module = Counting()
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(3, 2)), batch_size=1)
    L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, default_root_dir=tmp_path).fit(module, data)  # fmt: skip
    assert module.seen == [0, 1, 2, 3, 4, 5]


def test_initial_hparams_follow_a_rewrite() -> None:
    module = Counting(width=4)
    module.hparams["width"] = {"class_path": "described"}
    assert module.hparams_initial["width"] == 4
    freeze_initial_hparams(module)
    assert module.hparams_initial["width"] == {"class_path": "described"}
