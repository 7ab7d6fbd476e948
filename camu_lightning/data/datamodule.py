"""UnlearningDataModule: one place that knows the data, the split and every stream a method trains on.

A method names the streams it needs and their batch sizes (`train_streams()`, the names in streams.py), the run
hands that request to `request()`, and `train_dataloader` builds them, so a method never sees files or splits
(docs/adding_a_method.md). The CaMU tuples are built on the
first request of the `counterfactual` stream, i.e. inside the method's unlearning timer (camu.md section 8).
Evaluation loaders, in the order of `EVAL_SETS`, cover D_r, D_f and the test set (evaluation.py).
"""

from __future__ import annotations

import inspect
from functools import cached_property
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from camu_lightning.data.checks import check_data_settings
from camu_lightning.data.counterfactual import CounterfactualTuples, LabelRule, build_tuples
from camu_lightning.data.datasets import ImageArrays, dataset_arrays, load_dataset
from camu_lightning.data.evaluation import EVAL_SETS, evaluation_loaders, evaluation_sets
from camu_lightning.data.identity import dataset_identity, pipeline_identity, split_identity
from camu_lightning.data.rows import ImageRows, collate_batch
from camu_lightning.data.splits import (
    ForgetSplit,
    class_forget,
    make_split,
    random_forget,
    read_forget_indices,
)
from camu_lightning.data.streams import PartsBatchSampler, Stream, stream_dataset
from camu_lightning.data.transforms import InputPipeline, Pipeline

__all__ = ["EVAL_SETS", "METHOD_LINKS", "UnlearningDataModule"]
# Data attributes a method takes as arguments of the same name (`camu fit` links them; `links()` gives them to the
# Python API): the class count and input shape; pixel statistics (Boundary Shrink); training rows and the deletion
# request (SISA). A method without the argument ignores the link.
METHOD_LINKS = ("num_classes", "input_shape", "pixel_mean", "pixel_std", "train_rows", "forget_rows")


class UnlearningDataModule(L.LightningDataModule):
    """Data, forget split and streams of one unlearning run.

    Args:
        dataset: mnist, fashion_mnist, cifar10, cifar100, the embedded mnist5k or sklearn_digits, or a
            path to a .npz file with x_train, y_train, x_test, y_test; or None with `train` and `test`.
        train, test: your own map-style datasets of (image, label) pairs (a TensorDataset, an ImageFolder with
            images of one size, ...), in place of `dataset`: decoded once into memory, then split, streamed and
            evaluated as any named dataset (images as PIL, uint8, or float tensors in [0, 1]).
        root: folder holding `<dataset>.npz` or torchvision's layout.
        download: let torchvision fetch a missing dataset (needs internet).
        forget_fraction: random removal of floor(fraction * N) samples.
        forget_classes: class removal of every sample of these classes.
        forget_indices: a .json, .npy or .txt list of training indices to forget (a deletion request, or the
            `split.json` saved with an earlier run). Exactly one of the three forget settings is set.
        forget_repeat: D_f is repeated this many times to build the tuples and S (10 for CIFAR-100 class removal).
        split_seed: seeds D_f (random removal), S, the pairing, the masks and the counterfactual labels.
        forget_split_seed: draws a random D_f from this seed instead (default: split_seed): a run of another seed on
            the same D_f and D_r, e.g. the Retrain of another initialisation that measures the retraining floor.
        cf_label_rule: `keep_remain` (official code) or `uniform` (paper text).
        pipeline: `plain` (scale to [0, 1], normalise), `cifar32` or `imagenet224` (see transforms.py).
        mean, std: the per-channel normalisation your model was trained with, on pixels scaled to [0, 1] (what a
            torchvision `Normalize(mean, std)` held); default: the dataset's own (MNIST's 0.1307 / 0.3081, ...),
            none for your own datasets.
        mia_attack_size: N of the paper MIA, the attack's member and non-member training rows (4000).
        eval_batch_size: batch size of the evaluation passes.
        num_workers: DataLoader workers; 0 suits in-memory tensors.
    """

    def __init__(
        self,
        dataset: str | None = None,
        forget_repeat: int = 1,
        split_seed: int = 0,
        cf_label_rule: LabelRule = "keep_remain",
        pipeline: Pipeline = "plain",
        mia_attack_size: int = 4000,
        train: Dataset | None = None,
        test: Dataset | None = None,
        root: str = "data",
        download: bool = False,
        forget_fraction: float | None = None,
        forget_classes: list[int] | None = None,
        forget_indices: str | None = None,
        forget_split_seed: int | None = None,
        eval_batch_size: int = 1024,
        num_workers: int = 0,
        mean: list[float] | None = None,
        std: list[float] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["train", "test"])  # data, not settings
        check_data_settings(dict(self.hparams), (train, test))
        self.datasets = (train, test)
        self.tuples: CounterfactualTuples | None = None
        self.requested: dict[str, Stream | int] | None = None

    # ----------------------------------------------------------------- data and split, loaded once
    @cached_property
    def arrays(self) -> ImageArrays:
        if self.hparams.dataset is None:
            return dataset_arrays(*self.datasets)
        return load_dataset(self.hparams.dataset, self.hparams.root, self.hparams.download)

    @property
    def num_classes(self) -> int:
        return self.arrays.num_classes

    @property
    def input_shape(self) -> tuple[int, int, int]:
        channels, height, width = self.arrays.input_shape
        return (channels, 224, 224) if self.hparams.pipeline == "imagenet224" else (channels, height, width)

    @cached_property
    def pipeline(self) -> InputPipeline:
        return InputPipeline(self.hparams.pipeline, self.pixel_mean, self.pixel_std)

    @cached_property
    def split(self) -> ForgetSplit:
        hp, labels = self.hparams, self.arrays.y_train.numpy()
        if hp.forget_fraction is not None:
            seed = hp.split_seed if hp.forget_split_seed is None else hp.forget_split_seed
            forget, classes = random_forget(len(labels), hp.forget_fraction, seed), ()
        elif hp.forget_classes is not None:
            forget = class_forget(labels, list(hp.forget_classes), self.num_classes)
            classes = tuple(sorted(hp.forget_classes))
        else:
            forget, classes = read_forget_indices(hp.forget_indices, len(labels)), ()
        return make_split(forget, len(labels), hp.forget_repeat, hp.split_seed, classes)

    @property
    def forget_rows(self) -> list[int]:
        """The training indices of D_f: the deletion request of methods that retrain on rows they choose (SISA)."""
        return self.split.forget.tolist()

    def dataset_identity(self) -> str:
        return dataset_identity(self.hparams.dataset, self.arrays)

    def pipeline_identity(self) -> str:
        return pipeline_identity(self.hparams.pipeline, self.hparams.mean, self.hparams.std)

    def split_identity(self) -> str:
        return split_identity(self.split, len(self.arrays.y_train))

    @property
    def pixel_mean(self) -> tuple[float, ...] | None:
        """The input normalisation's mean: the user's (`mean`), else the dataset's."""
        return self.arrays.mean if self.hparams.mean is None else tuple(self.hparams.mean)

    @property
    def pixel_std(self) -> tuple[float, ...] | None:
        return self.arrays.std if self.hparams.std is None else tuple(self.hparams.std)

    def links(self, method_class: type) -> dict[str, Any]:
        """The data attributes this method class takes, by argument name: `Method(**datamodule.links(Method), ...)`."""
        takes = inspect.signature(method_class.__init__).parameters
        return {name: getattr(self, name) for name in METHOD_LINKS if name in takes}

    def setup(self, stage: str) -> None:
        self.split  # noqa: B018 -- fail fast on a bad split, before any training starts

    # ----------------------------------------------------------------- training streams
    def train_view(self, rows: Tensor) -> Tensor:
        """Training inputs of the given training indices (a fresh augmentation where the pipeline has one)."""
        return self.pipeline.train(self.arrays.x_train[rows])

    @cached_property
    def train_rows(self) -> ImageRows:
        """Every training sample with the train transform, position = dataset index: for methods that train on rows
        of their own choosing (SISA's shards)."""
        arrays = self.arrays
        return ImageRows(arrays.x_train, arrays.y_train, torch.arange(len(arrays.y_train)), self.pipeline.train)

    def build_tuples(self) -> CounterfactualTuples:
        """The counterfactual tuples of this run, built on first call."""
        if self.tuples is None:
            split = self.split
            self.tuples = build_tuples(
                np.tile(split.forget, self.hparams.forget_repeat),
                split.sample,
                self.arrays.y_train,
                self.train_view,
                self.num_classes,
                self.hparams.cf_label_rule,
                self.hparams.split_seed,
            )
        return self.tuples

    def stream(self, name: str, request: Stream) -> torch.utils.data.Dataset:
        """The dataset behind a named training stream (see streams.py)."""
        tuples = self.build_tuples if name == "counterfactual" else None
        return stream_dataset(name, request, self.arrays, self.split, self.pipeline, self.hparams.split_seed, tuples)

    def request(self, streams: dict[str, Stream | int]) -> None:
        """Serve these training streams from `train_dataloader` (the run hands over what its method asks for; a
        method that trains on nothing asks for none, and Lightning's fit then runs no training batch)."""
        self.requested = dict(streams)

    def train_dataloader(self) -> dict[str, DataLoader]:
        """One loader per requested stream; Lightning zips them (the shorter ones cycle, reshuffled), so a batch is
        {stream: batch} and an epoch is one pass over the longest stream."""
        if self.requested is None:
            raise RuntimeError(
                "no training streams requested: run the method with camu_lightning.unlearn(...), or call "
                "datamodule.request(method.train_streams()) before trainer.fit"
            )
        trainer = self.trainer
        return self.train_loaders(self.requested, trainer.world_size, trainer.global_rank)

    def train_loaders(
        self, streams: dict[str, Stream | int], world_size: int = 1, rank: int = 0
    ) -> dict[str, DataLoader]:
        """The loaders of these streams (a nested single-device fit passes them to `trainer.fit` itself)."""
        loaders = {}
        for name, request in streams.items():
            request = request if isinstance(request, Stream) else Stream(request)
            dataset = self.stream(name, request)
            if name == "forget_then_remain":
                sizes = [len(self.split.forget), len(self.split.remain)]
                batch_sizes = [request.forget_batch_size or request.batch_size, request.batch_size]
                sampler = PartsBatchSampler(dataset, sizes, batch_sizes, self.hparams.split_seed, world_size, rank)
                loaders[name] = DataLoader(
                    dataset,
                    batch_size=None,
                    sampler=sampler,
                    collate_fn=collate_batch,
                    num_workers=self.hparams.num_workers,
                )
            else:
                loaders[name] = self._loader(dataset, request.batch_size, shuffle=True)
        return loaders

    def pass_loaders(self, streams: dict[str, int]) -> dict[str, DataLoader]:
        """One unshuffled pass over each stream, for a method's gradient passes (saliency, importances)."""
        return {
            name: DataLoader(self.stream(name, Stream(size)), batch_size=size, shuffle=False, collate_fn=collate_batch)
            for name, size in streams.items()
        }

    # ----------------------------------------------------------------- evaluation
    @cached_property
    def eval_sets(self) -> dict[str, ImageRows]:
        return evaluation_sets(self.arrays, self.split, self.pipeline, dict(self.hparams))

    def _eval_loaders(self) -> list[DataLoader]:
        return evaluation_loaders(self.eval_sets, self.hparams.eval_batch_size, self.hparams.num_workers, self.trainer)

    def val_dataloader(self) -> list[DataLoader]:
        return self._eval_loaders()

    def test_dataloader(self) -> list[DataLoader]:
        return self._eval_loaders()

    def _loader(self, dataset: torch.utils.data.Dataset, batch_size: int, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            collate_fn=collate_batch,
            num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0,
        )

    def summary(self) -> dict[str, Any]:
        """Split sizes for logs and results.json."""
        split = self.split
        return {
            "num_train": len(self.arrays.y_train),
            "num_test": len(self.arrays.y_test),
            "num_forget": len(split.forget),
            "num_remain": len(split.remain),
            "num_sample": len(split.sample),
            "forget_classes": list(split.forget_classes),
        }
