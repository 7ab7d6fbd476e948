"""UnlearningMethod: what every method shares — the network and the evaluation.

A method subclasses `UnlearningMethod` directly, names its training streams (and any one-off passes) and writes
`training_step`; docs/adding_a_method.md is the protocol on one page.
Evaluation lives here once: each evaluation set is passed through the network once, the accuracies of
metrics.md section 1 are torchmetrics states, and the paper MIA (section 2) reuses the same softmax rows. The
numbers leave the method as logged values (`val/<metric>`, `test/<metric>`), in float64 so that what the run layer
reads back from `trainer.callback_metrics` is the computed number to the last bit. The unlearning clock and the
run around fit are Lightning callbacks (`camu_lightning.run`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor, nn
from torch.utils.data import DataLoader

from camu_lightning.data.datamodule import EVAL_SETS
from camu_lightning.metrics import PaperMIA, SliceAccuracies, StrongerAttacks, sorted_softmax
from camu_lightning.models.embedding import as_network, layout_digest, reinitialised
from camu_lightning.utils.config_files import read_config
from camu_lightning.utils.lightning_private import freeze_initial_hparams


class DivergenceError(RuntimeError):
    """A non-finite loss: the run stops and is never reported as a success."""

    def __init__(self, method: str, epoch: int, step: int, loss: float) -> None:
        super().__init__(f"{method} diverged at epoch {epoch}, step {step}: loss = {loss}; lower the learning rate")


NetworkFactory = Callable[[int, tuple[int, int, int]], nn.Module]


class UnlearningMethod(L.LightningModule):
    """Base of every unlearning method.

    Args:
        network: the trained model to unlearn (any classifier returning logits; its representation is read by
            `WithEmbedding`, which names another layer), or a network class (class_path and its other init_args in
            the config) called with (num_classes, input_shape), whose forward returns (logits, embedding), into
            which the run loads the original weights before fit. Retrain and SISA start from fresh parameters
            either way.
        num_classes: linked from the data module.
        input_shape: (channels, height, width), linked from the data module.
        seed: the run seed (linked from seed_everything): seeds the attacks and any state the method draws.
    """

    # False for methods that start from their own init (Retrain) or training-time state (SISA).
    starts_from_original = True
    # False for methods whose unlearning is not a training loop Lightning can shard (SISA's shard stages, Unroll's
    # recorded pass): `camu fit` refuses them on several devices.
    distributable = True
    # True for methods whose unlearned model depends on the split and their recipe alone (Retrain): the CLI caches
    # it, and a rerun of the same split loads it instead of training.
    caches_unlearned_model = False
    # The trainer.max_epochs a run of this method accepts (None: no upper bound, though always finite).
    epoch_range: tuple[int, int | None] = (1, None)

    def __init__(
        self, network: NetworkFactory | nn.Module, num_classes: int, input_shape: tuple[int, int, int], seed: int
    ) -> None:
        super().__init__()
        # The subclass's arguments, from its frame (or the CLI's config, network as its class path and init args),
        # less the data the CLI links in: SISA's rows and deletion request are inputs, not settings, and a link the
        # subclass does not take (pixel statistics) would break load_from_checkpoint.
        # The rows are never copied into the hyperparameters (SISA's train_rows hold every training image).
        self.given_model = isinstance(network, nn.Module)  # the trained model itself, not its class
        model = ["network"] if self.given_model else []  # weights, not a setting: described below
        self.save_hyperparameters(ignore=["train_rows", "forget_rows", *model], frame=inspect.currentframe().f_back)
        takes = inspect.signature(type(self).__init__).parameters
        self.remove_ignored_hparams([name for name in self.hparams if name not in takes and name[0] != "_"])
        # A given model is the original itself: the hyperparameter describes it by its class and the names and
        # shapes of its tensors (two nn.Sequential of other layouts must not share a cached Retrain).
        if self.given_model:
            given = as_network(network)
            self.hparams["network"] = {"class_path": f"{type(network).__module__}.{type(network).__qualname__}",
                                       "init_args": {"layout": layout_digest(given)}}  # fmt: skip
            self.network_factory = lambda num_classes, input_shape: reinitialised(given)
            self.network = given if self.starts_from_original else reinitialised(given)
        else:
            self.network_factory = network
            self.network = network(num_classes, tuple(input_shape))
        # The loggers write hparams_initial (hparams.yaml): it must not keep what was just removed.
        freeze_initial_hparams(self)
        self.stage_accuracies = nn.ModuleDict({stage: SliceAccuracies(num_classes) for stage in ("val", "test")})
        self.paper_mia = PaperMIA(seed)  # metrics.md section 2, at every evaluation
        # metrics.md section 5, at test and in a stand-alone validation (the pre-unlearning model), not every epoch.
        self.stronger_attacks = StrongerAttacks(seed)
        self.stronger_attacks_at_test = True  # `camu fit --stronger_attacks false` turns them off at test
        self.pass_loaders: dict[str, DataLoader] = {}  # the loaders of pass_streams(), by `take_passes`

    @classmethod
    def from_config(cls, config: str | Path, **arguments: Any) -> UnlearningMethod:
        """The method with a config's settings and `arguments` on top (your model, the data's links, the seed):

            CaMU.from_config("configs/mnist_camu.yaml", network=model, seed=0, **data.links(CaMU))

        Configs are the single source of every setting that changes results (docs/style: no Python defaults for
        them); this takes them from one, so a script copies no YAML by hand. The config must name this class."""
        model = read_config(config).get("model") or {}
        named = str(model.get("class_path", "")).rsplit(".", 1)[-1]
        if named != cls.__name__:
            raise ValueError(
                f"{config} configures {named or 'no model'}, not {cls.__name__}: give a {cls.__name__} config"
            )
        settings = {key: value for key, value in (model.get("init_args") or {}).items() if key != "network"}
        return cls(**(settings | arguments))

    # ----------------------------------------------------------------- what a method provides
    def train_streams(self) -> dict[str, int]:
        """Training streams this method reads, with their batch sizes (see UnlearningDataModule); {} for a method
        with no training loop (its work happens at fit start), so Lightning's fit runs no batch."""
        raise NotImplementedError

    def pass_streams(self) -> dict[str, int]:
        """Streams the method passes over once, unshuffled, outside its training batches (importances, saliency),
        with their batch sizes; their loaders are in `self.pass_loaders` by fit start (`take_passes`)."""
        return {}

    def take_passes(self, loaders: dict[str, DataLoader]) -> None:
        """The hook through which the run hands over the loaders of `pass_streams()` (the `ServeStreams` callback,
        at setup): the method never reads the data module itself."""
        self.pass_loaders = dict(loaders)

    def load_original(self, state_dict: dict[str, Tensor]) -> None:
        """Start from the original model's weights (methods keeping frozen copies extend this)."""
        self.network.load_state_dict(state_dict)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.network(x)

    def evaluation_logits(self, x: Tensor) -> Tensor:
        """The logits every metric reads (a method whose network is temporarily widened narrows them here)."""
        return self.network(x)[0]

    def training_state_settings(self) -> dict[str, Any] | None:
        """Settings of training-time state this method needs (SISA shards, Unroll's recorded pass), or None.

        The CLI caches the state under these settings, the original's key and, where `split_dependent` is
        true in them, the forget set; it calls `create_training_state` on a miss and always `load_training_state`.
        """
        return None

    def create_training_state(self, datamodule: L.LightningDataModule, trainer_settings: dict[str, Any]) -> dict:
        raise NotImplementedError

    def load_training_state(self, state: dict) -> None:
        raise NotImplementedError

    def check_finite(self, loss: Tensor) -> None:
        """The divergence guard: stop the run on a NaN or infinite loss."""
        if not torch.isfinite(loss):
            raise DivergenceError(type(self).__name__, self.current_epoch, self.global_step, float(loss))

    def on_train_epoch_end(self) -> None:
        """The divergence guard's second half: parameters that overflowed without a non-finite loss yet."""
        if not all(bool(torch.isfinite(p).all()) for p in self.network.parameters()):
            raise DivergenceError(type(self).__name__, self.current_epoch, self.global_step, float("nan"))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Built by the CLI, the network hyperparameter is its config; given as a class (Python API), it is stored as
        # its class path, so the checkpoint still loads with weights_only=True (pass network= to rebuild it).
        network = checkpoint.get("hyper_parameters", {}).get("network")
        if network is not None and not isinstance(network, dict):
            network = getattr(network, "func", network)
            checkpoint["hyper_parameters"]["network"] = {"class_path": f"{network.__module__}.{network.__qualname__}"}

    # ----------------------------------------------------------------- evaluation
    def validation_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate_batch("val", batch, dataloader_idx)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate_batch("test", batch, dataloader_idx)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """The evaluation logits of a batch (`trainer.predict` over the evaluation loaders; `camu score`)."""
        return self.evaluation_logits(batch["x"])

    def on_validation_epoch_end(self) -> None:
        self._finish_evaluation("val")

    def on_test_epoch_end(self) -> None:
        self._finish_evaluation("test")

    def _evaluate_batch(self, stage: str, batch: dict[str, Tensor], set_index: int) -> None:
        # Rows a distributed sampler repeated to even out the ranks are flagged: they are counted by no metric.
        counted = ~batch["is_padding"] if "is_padding" in batch else slice(None)
        logits = self.evaluation_logits(batch["x"])[counted]
        rows = {name: value[counted] for name, value in batch.items() if name not in ("x", "is_padding")}
        self.stage_accuracies[stage].update(EVAL_SETS[set_index], logits, rows["y"], rows.get("in_forget_classes"))
        order = set_index * 2**40 + rows["index"]  # a global row identity, the same on any number of ranks
        if self._with_stronger_attacks():
            self.stronger_attacks.update(
                EVAL_SETS[set_index], logits, rows["y"], order, rows.get("svc_shadow"), rows.get("in_forget_classes")
            )
        in_attack = rows["mia_role"] > 0
        if in_attack.any():
            self.paper_mia.update(
                sorted_softmax(logits[in_attack]), rows["mia_role"][in_attack], rows["mia_weight"][in_attack],
                order[in_attack],
            )  # fmt: skip

    def _finish_evaluation(self, stage: str) -> None:
        if self.trainer.sanity_checking:
            self.stage_accuracies[stage].reset()
            self.stronger_attacks.reset()
            self.paper_mia.reset()
            return
        metrics = self.stage_accuracies[stage].compute()  # synced across ranks
        self.stage_accuracies[stage].reset()
        metrics["mia"] = self.paper_mia.compute()  # synced across ranks
        self.paper_mia.reset()
        if self._with_stronger_attacks():
            metrics |= self.stronger_attacks.compute()  # synced across ranks
        self.stronger_attacks.reset()
        # rank_zero_only: every value is equal on every rank (synced), so rank 0 logs them once.
        # float64: Lightning keeps a logged float64 value as it is, so the results read back are these numbers.
        logged = {f"{stage}/{key}": torch.tensor(float(value), dtype=torch.float64) for key, value in metrics.items()}
        self.log_dict(logged, add_dataloader_idx=False, rank_zero_only=True)

    def _with_stronger_attacks(self) -> bool:
        """At test (unless turned off) and in a stand-alone validation (the original's evaluation, which is cached
        with them), not in the validations during fit."""
        stage = self.trainer.state.fn
        return stage == TrainerFn.VALIDATING or (stage == TrainerFn.TESTING and self.stronger_attacks_at_test)

    def unlearning_summary(self) -> dict[str, Any]:
        """Numbers of this method for results.json beyond the metrics and the unlearning time (methods add their
        own: SISA's retrained stages, SSD's selected elements)."""
        return {}
