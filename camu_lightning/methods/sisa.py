"""SISA: exact unlearning by sharding and slicing (Bourtoule et al., IEEE S&P 2021; baselines.md section 7).

Training-time state (split-independent, cached): the training set is permuted by the seed and cut into S
shards; shard s trains a fresh network on cumulative slices, stage r on shard positions [0, (r+1)m) (the last
stage on the whole shard), keeping a checkpoint (weights and Adam state) after every stage, named by the hash
of its index list. A deletion retrains only the shards holding deleted indices, from the last stage that never
saw one. The deployed model is the ensemble: mean softmax (default) or label voting (the reference).

Each stage is a nested Lightning fit of the original's recipe (`Classifier`) on the run's device and precision,
its batch order and augmentation drawn from (seed, shard, stage) alone, so a stage resumed from its predecessor's
cached checkpoint trains exactly as it would have in one uninterrupted run.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Sequence
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from camu_lightning.data.rows import collate_batch
from camu_lightning.methods.base import NetworkFactory, UnlearningMethod
from camu_lightning.original import Classifier, on_one_device

log = logging.getLogger(__name__)


def shard_indices(num_train: int, num_shards: int, seed: int) -> list[np.ndarray]:
    """A seeded permutation of 0..N-1 cut at multiples of floor(N / S); the last shard takes the remainder."""
    order = np.random.default_rng([seed, 101]).permutation(num_train)
    size = num_train // num_shards
    return [order[s * size : (s + 1) * size if s < num_shards - 1 else num_train] for s in range(num_shards)]


def stage_epochs(epochs: int, num_slices: int) -> list[int]:
    """e_r = floor(2E(r+1)/(R+1)) - floor(2Er/(R+1)): in total what E epochs on the whole shard cost."""
    return [2 * epochs * (r + 1) // (num_slices + 1) - 2 * epochs * r // (num_slices + 1) for r in range(num_slices)]


def slice_end(shard_size: int, num_slices: int, stage: int) -> int:
    return shard_size if stage == num_slices - 1 else (stage + 1) * (shard_size // num_slices)


def index_hash(indices: np.ndarray) -> str:
    """The reference's `getShardHash`: sha256 of the sorted indices joined by ':'."""
    return hashlib.sha256(":".join(map(str, sorted(indices.tolist()))).encode()).hexdigest()


def stage_seed(seed: int, shard: int, stage: int) -> int:
    return int(np.random.default_rng([seed, shard, stage]).integers(2**62))


def on_cpu(state: Any) -> Any:
    """A deep copy of a (nested) state dict with every tensor on the CPU: a checkpoint no later step can change."""
    if isinstance(state, Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {key: on_cpu(value) for key, value in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(on_cpu(value) for value in state)
    return copy.deepcopy(state)


class ShardEnsemble(nn.Module):
    """S networks behind one (logits, embedding) forward: logits = log of the aggregated class distribution."""

    def __init__(self, shards: list[nn.Module], aggregation: Literal["mean_softmax", "vote"]) -> None:
        super().__init__()
        self.shards = nn.ModuleList(shards)
        self.aggregation = aggregation

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        outputs = [shard(x) for shard in self.shards]
        if self.aggregation == "mean_softmax":
            distribution = torch.stack([F.softmax(logits.float(), dim=1) for logits, _ in outputs]).mean(0)
        else:  # one-hot votes; argmax of the counts breaks ties towards the lowest class, as np.argmax does
            votes = [F.one_hot(logits.argmax(1), logits.shape[1]).float() for logits, _ in outputs]
            distribution = torch.stack(votes).mean(0)
        return distribution.log(), torch.stack([embedding for _, embedding in outputs]).mean(0)


class SISA(UnlearningMethod):
    """Retrain the affected shards from their last clean slice; evaluate the shard ensemble.

    Args:
        num_shards: S (5). num_slices: R (5). epochs: E, the original's epochs (CNN 10, ResNet-18 20).
        lr, weight_decay, batch_size: the original recipe (Adam).
        aggregation: `mean_softmax` (default) or `vote` (the reference).
        train_rows: every training sample by dataset index, with the train transform (linked from the data module).
        forget_rows: the deletion request, training indices of D_f (linked from the data module).
    """

    starts_from_original = False
    distributable = False
    epoch_range = (1, 1)  # its work happens once, at fit start

    def __init__(
        self,
        network: NetworkFactory,
        num_classes: int,
        input_shape: tuple[int, int, int],
        seed: int,
        num_shards: int,
        num_slices: int,
        epochs: int,
        lr: float,
        weight_decay: float,
        batch_size: int,
        aggregation: Literal["mean_softmax", "vote"],
        train_rows: Dataset | None = None,
        forget_rows: Sequence[int] | None = None,
    ) -> None:
        super().__init__(network, num_classes, input_shape, seed)
        if aggregation not in ("mean_softmax", "vote"):
            raise ValueError(f"unknown model.aggregation '{aggregation}'; choose from: mean_softmax, vote")
        if num_shards < 1 or num_slices < 1 or epochs < 1:
            raise ValueError(
                f"model.num_shards, num_slices and epochs must be >= 1, got {num_shards}, {num_slices}, {epochs}"
            )
        self.train_rows = train_rows
        self.forget_rows = np.asarray(forget_rows if forget_rows is not None else [], dtype=np.int64)
        self.network = ShardEnsemble([self.fresh_shard(s) for s in range(num_shards)], aggregation)
        self.checkpoints: dict[str, Any] = {}
        self.trained_stages: list[tuple[int, int]] = []

    def fresh_shard(self, shard: int) -> nn.Module:
        """A fresh constructor seeded by (seed, shard)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(np.random.default_rng([self.hparams.seed, shard]).integers(2**62)))
            return self.network_factory(self.hparams.num_classes, tuple(self.hparams.input_shape))

    def shards(self) -> list[np.ndarray]:
        return shard_indices(len(self.train_rows), self.hparams.num_shards, self.hparams.seed)

    # ----------------------------------------------------------------- training-time state
    def training_state_settings(self) -> dict[str, Any]:
        hp = self.hparams
        return {
            "method": "SISA",
            **{key: hp[key] for key in ("num_shards", "num_slices", "epochs", "lr", "weight_decay", "batch_size")},
            "seed": hp.seed,
            "split_dependent": False,
        }

    def create_training_state(self, datamodule: L.LightningDataModule, trainer_settings: dict[str, Any]) -> dict:
        for shard, indices in enumerate(self.shards()):
            self.train_stages(shard, indices, np.array([], dtype=np.int64), 0, trainer_settings)
        return self.checkpoints

    def load_training_state(self, state: dict) -> None:
        self.checkpoints = dict(state)
        for shard, network in enumerate(self.network.shards):
            network.load_state_dict(self.checkpoints[f"{shard}/{self.hparams.num_slices - 1}"]["model"])

    def train_stages(
        self, shard: int, indices: np.ndarray, deleted: np.ndarray, first_stage: int, trainer_settings: dict[str, Any]
    ) -> None:
        """Train stages first_stage..R-1 of one shard, continuing from the checkpoint of stage first_stage - 1."""
        hp = self.hparams
        network = self.network.shards[shard]
        device = next(network.parameters()).device  # a nested fit ends by moving its module to the CPU
        optimizer_state = None
        if first_stage > 0:
            previous = self.checkpoints[f"{shard}/{first_stage - 1}"]
            network.load_state_dict(previous["model"])
            optimizer_state = previous["optimizer"]
        else:
            network.load_state_dict(self.fresh_shard(shard).state_dict())
        for stage in range(first_stage, hp.num_slices):
            rows = indices[: slice_end(len(indices), hp.num_slices, stage)]
            rows = rows[~np.isin(rows, deleted)]
            classifier = Classifier(network, hp.lr, hp.weight_decay, hp.batch_size, optimizer_state)
            seed = stage_seed(hp.seed, shard, stage)
            loader = DataLoader(
                Subset(self.train_rows, rows.tolist()),
                batch_size=hp.batch_size,
                shuffle=True,
                generator=torch.Generator().manual_seed(seed),
                collate_fn=collate_batch,
            )
            with torch.random.fork_rng(devices=[]):  # augmentation draws from the global RNG: seed it per stage
                torch.manual_seed(seed)
                trainer = L.Trainer(**trainer_settings, max_epochs=stage_epochs(hp.epochs, hp.num_slices)[stage])
                trainer.fit(classifier, train_dataloaders={"train": loader})
            optimizer_state = on_cpu(trainer.optimizers[0].state_dict())
            self.checkpoints[f"{shard}/{stage}"] = {
                "hash": index_hash(rows),
                "model": on_cpu(network.state_dict()),
                "optimizer": optimizer_state,
            }
            self.trained_stages.append((shard, stage))
        network.to(device)

    # ----------------------------------------------------------------- unlearning
    def stage_trainer_settings(self) -> dict[str, Any]:
        """A quiet single-device Trainer on the run's device and precision."""
        return on_one_device(self.device) | {
            "precision": self.trainer.precision,
            "logger": False,
            "enable_checkpointing": False,
            "enable_model_summary": False,
            "enable_progress_bar": False,
            "num_sanity_val_steps": 0,
            "default_root_dir": self.trainer.default_root_dir,
        }

    def train_streams(self) -> dict[str, int]:
        return {}  # nothing to iterate: its work happens at fit start

    def on_fit_start(self) -> None:
        super().on_fit_start()
        self.trained_stages = []
        hp = self.hparams
        for shard, indices in enumerate(self.shards()):
            positions = np.flatnonzero(np.isin(indices, self.forget_rows))
            if positions.size == 0:
                continue
            first_stage = min(int(positions[0]) // (len(indices) // hp.num_slices), hp.num_slices - 1)
            log.info(
                "SISA: shard %d holds %d deleted rows; retraining stages %d..%d",
                *(shard, positions.size, first_stage, hp.num_slices - 1),
            )
            self.train_stages(shard, indices, self.forget_rows, first_stage, self.stage_trainer_settings())

    def training_step(self, batch: dict[str, dict[str, Tensor]], batch_idx: int) -> None:
        raise RuntimeError("SISA retrains its shards in on_fit_start: it asks for no training stream")

    def configure_optimizers(self) -> None:
        return None  # each shard stage has its own Adam

    def unlearning_summary(self) -> dict:
        return super().unlearning_summary() | {
            "retrained_stages": len(self.trained_stages),
            "aggregation": self.hparams.aggregation,
        }
