"""SISA: exact unlearning by sharding and slicing (Bourtoule et al., IEEE S&P 2021; baselines.md section 7).

Training-time state (split-independent, cached): the training set is permuted by the seed and cut into S
shards; shard s trains a fresh network on cumulative slices, stage r on shard positions [0, (r+1)m) (the last
stage on the whole shard), keeping a checkpoint (weights and Adam state) after every stage, named by the hash
of its index list. A deletion retrains only the shards holding deleted indices, from the last stage that never
saw one. The deployed model is the ensemble: mean softmax (default) or label voting (the reference).
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from camu_lightning.methods.base import NetworkFactory, UnlearningMethod


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
    """

    starts_from_original = False

    def __init__(
        self,
        network: NetworkFactory,
        num_classes: int,
        input_shape: tuple[int, int, int],
        num_shards: int,
        num_slices: int,
        epochs: int,
        lr: float,
        weight_decay: float,
        batch_size: int,
        aggregation: Literal["mean_softmax", "vote"],
        seed: int = 0,
    ) -> None:
        super().__init__(network, num_classes, input_shape)
        if aggregation not in ("mean_softmax", "vote"):
            raise ValueError(f"unknown model.aggregation '{aggregation}'; choose from: mean_softmax, vote")
        if num_shards < 1 or num_slices < 1 or epochs < 1:
            raise ValueError(
                f"model.num_shards, num_slices and epochs must be >= 1, got {num_shards}, {num_slices}, {epochs}"
            )
        self.save_hyperparameters(ignore=["network"])
        self.network = ShardEnsemble([self.fresh_shard(s) for s in range(num_shards)], aggregation)
        self.checkpoints: dict[str, Any] = {}
        self.trained_stages: list[tuple[int, int]] = []

    def fresh_shard(self, shard: int) -> nn.Module:
        """A fresh constructor seeded by (seed, shard)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(np.random.default_rng([self.hparams.seed, shard]).integers(2**62)))
            return self.network_factory(self.hparams.num_classes, tuple(self.hparams.input_shape))

    # ----------------------------------------------------------------- training-time state
    def training_state_settings(self) -> dict[str, Any]:
        hp = self.hparams
        return {
            "method": "SISA",
            "num_shards": hp.num_shards,
            "num_slices": hp.num_slices,
            "epochs": hp.epochs,
            "lr": hp.lr,
            "weight_decay": hp.weight_decay,
            "batch_size": hp.batch_size,
            "seed": hp.seed,
            "network": type(self.network.shards[0]).__name__,
            "split_dependent": False,
        }

    def create_training_state(self, datamodule: L.LightningDataModule, trainer_settings: dict[str, Any]) -> dict:
        self.datamodule = datamodule
        for shard, indices in enumerate(
            shard_indices(len(datamodule.arrays.y_train), self.hparams.num_shards, self.hparams.seed)
        ):
            self.train_stages(shard, indices, deleted=np.array([], dtype=np.int64), first_stage=0)
        return self.checkpoints

    def load_training_state(self, state: dict) -> None:
        self.checkpoints = dict(state)
        for shard, network in enumerate(self.network.shards):
            network.load_state_dict(self.checkpoints[f"{shard}/{self.hparams.num_slices - 1}"]["model"])

    def train_stages(self, shard: int, indices: np.ndarray, deleted: np.ndarray, first_stage: int) -> None:
        """Train stages first_stage..R-1 of one shard, continuing from the checkpoint of stage first_stage - 1."""
        hp, device = self.hparams, self.device
        network = self.fresh_shard(shard).to(device)
        optimizer = torch.optim.Adam(network.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        if first_stage > 0:
            previous = self.checkpoints[f"{shard}/{first_stage - 1}"]
            network.load_state_dict(previous["model"])
            optimizer.load_state_dict(previous["optimizer"])
        network.train()
        for stage in range(first_stage, hp.num_slices):
            rows = indices[: slice_end(len(indices), hp.num_slices, stage)]
            rows = torch.from_numpy(rows[~np.isin(rows, deleted)])
            for epoch in range(stage_epochs(hp.epochs, hp.num_slices)[stage]):
                generator = torch.Generator().manual_seed(
                    int(np.random.default_rng([hp.seed, shard, stage, epoch]).integers(2**62))
                )
                for batch in torch.randperm(len(rows), generator=generator).split(hp.batch_size):
                    x = self.datamodule.train_view(rows[batch]).to(device)
                    loss = F.cross_entropy(
                        network(x)[0].float(), self.datamodule.arrays.y_train[rows[batch]].to(device)
                    )
                    self.check_finite(loss)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
            self.trained_stages.append((shard, stage))
            self.checkpoints[f"{shard}/{stage}"] = {
                "hash": index_hash(rows.numpy()),
                "model": {k: v.detach().cpu().clone() for k, v in network.state_dict().items()},
                "optimizer": optimizer.state_dict(),
            }
        self.network.shards[shard].load_state_dict(network.state_dict())

    # ----------------------------------------------------------------- unlearning
    def on_fit_start(self) -> None:
        super().on_fit_start()
        # SISA's deletion request is a list of training indices by nature: it reads D_f from the data module.
        self.datamodule = self.trainer.datamodule
        deleted = self.datamodule.split.forget
        self.trained_stages = []
        hp = self.hparams
        for shard, indices in enumerate(shard_indices(len(self.datamodule.arrays.y_train), hp.num_shards, hp.seed)):
            positions = np.flatnonzero(np.isin(indices, deleted))
            if positions.size == 0:
                continue
            first_stage = min(int(positions[0]) // (len(indices) // hp.num_slices), hp.num_slices - 1)
            self.train_stages(shard, indices, deleted, first_stage)
        self.stop_timer()

    def training_step(self, batch: dict[str, dict[str, Tensor]], batch_idx: int) -> None:
        raise RuntimeError("SISA retrains its shards in on_fit_start; run it with trainer.limit_train_batches: 0")

    def configure_optimizers(self) -> None:
        return None  # each shard stage has its own Adam

    def unlearning_summary(self) -> dict:
        return super().unlearning_summary() | {
            "retrained_stages": len(self.trained_stages),
            "aggregation": self.hparams.aggregation,
        }
