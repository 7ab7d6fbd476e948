"""The speed benchmark's rows beside the CaMU loop: original/Retrain training, evaluation, split construction and
`camu fit` end to end; and the quiet Trainer and MNIST data module every row uses."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from camu_lightning.channels_last import ChannelsLast
from camu_lightning.data import UnlearningDataModule
from camu_lightning.methods import CaMU
from camu_lightning.models import CNN
from camu_lightning.original import Classifier
from camu_lightning.speed.camu_loops import SETTINGS, PerSampleImages
from camu_lightning.speed.measure import (
    peak_rss_mb,
    row_results,
    run_with_peak_rss,
    stopwatch,
    timed_in_rotation,
)


def quiet_trainer(**settings) -> L.Trainer:
    return L.Trainer(
        **(
            {
                "accelerator": "cpu",
                "devices": 1,
                "logger": False,
                "enable_checkpointing": False,
                "enable_progress_bar": False,
                "enable_model_summary": False,
                "num_sanity_val_steps": 0,
                "limit_val_batches": 0,
            }
            | settings
        )
    )


# ----------------------------------------------------------------------------- the CaMU loop
def datamodule_for(root: str, scenario: str) -> UnlearningDataModule:
    selection = {"forget_fraction": 0.1} if scenario == "random" else {"forget_classes": [0]}
    return UnlearningDataModule(
        dataset="mnist",
        root=root,
        forget_repeat=1,
        split_seed=0,
        cf_label_rule="keep_remain",
        pipeline="plain",
        mia_attack_size=4000,
        **selection,
    )


# ----------------------------------------------------------------------------- training, evaluation, split
def training_rows(datamodule, batches: int, repeats: int) -> list[dict[str, Any]]:
    """Original/Retrain training at batch 32: suite vs per-sample DataLoader vs in-memory batches."""
    x_train, y_train = datamodule.arrays.x_train, datamodule.arrays.y_train

    def suite() -> float:
        clock = EpochClock()
        torch.manual_seed(0)
        classifier = Classifier(CNN(10, datamodule.input_shape), lr=1e-3, weight_decay=1e-4, batch_size=32)
        loaders = datamodule.train_loaders(classifier.train_streams())
        quiet_trainer(max_epochs=1, limit_train_batches=batches, callbacks=[clock]).fit(classifier, loaders)
        return clock.seconds

    def loop(batches_of) -> float:
        torch.manual_seed(0)
        network = CNN(10, datamodule.input_shape)
        optimizer = torch.optim.Adam(network.parameters(), lr=1e-3, weight_decay=1e-4)
        started = time.perf_counter()
        for step, (x, y) in enumerate(batches_of):
            if step == batches:
                break
            loss = F.cross_entropy(network(x)[0], y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return time.perf_counter() - started

    every = torch.arange(len(y_train))
    per_sample = PerSampleImages(x_train, y_train, every)
    seconds = timed_in_rotation(
        {
            "suite (Trainer)": suite,
            "naive per-sample loop": lambda: loop(DataLoader(per_sample, batch_size=32, shuffle=True)),
            "in-memory loop": lambda: loop(
                (x_train[b].float() / 255, y_train[b]) for b in torch.randperm(len(every)).split(32)
            ),
        },
        repeats,
    )
    return row_results(seconds, batches * 32)


class EpochClock(L.Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self.seconds = time.perf_counter() - self.started


def evaluation_row(datamodule, state, layout: str) -> dict[str, Any]:
    method = CaMU(CNN, 10, datamodule.input_shape, seed=0, **SETTINGS)
    method.load_original(state)
    callbacks = [ChannelsLast()] if layout == "channels_last" else []
    seconds = stopwatch(lambda: quiet_trainer(callbacks=callbacks).test(method, datamodule, verbose=False))
    rows = len(datamodule.split.remain) + len(datamodule.split.forget) + len(datamodule.arrays.y_test)
    return {
        "row": "evaluation: 5 accuracies + paper MIA",
        "seconds": seconds,
        "per_s": rows / seconds,
        "peak_rss_mb": peak_rss_mb(),
    }


def split_row(root: str, scenario: str) -> dict[str, Any]:
    datamodule = datamodule_for(root, scenario)
    datamodule.arrays  # noqa: B018 -- loading is not part of the split
    started = time.perf_counter()
    datamodule.split  # noqa: B018
    datamodule.build_tuples()
    seconds = time.perf_counter() - started
    return {
        "row": f"split + tuples ({scenario})",
        "seconds": seconds,
        "per_s": len(datamodule.tuples) / seconds,
        "peak_rss_mb": peak_rss_mb(),
    }


def end_to_end_row(root: str, scenario: str) -> dict[str, Any]:
    """`camu fit` as a user runs it (original cached), process start to results.json, with its peak RSS."""
    config = "configs/mnist_camu.yaml" if scenario == "random" else "configs/mnist_camu_class.yaml"
    camu = str(Path(sys.executable).with_name("camu"))
    seconds, peak_mb = run_with_peak_rss(
        [camu, "fit", "--config", config, "--data.root", root, "--trainer.enable_progress_bar", "false"]
    )
    return {"row": f"camu fit end to end ({scenario})", "seconds": seconds, "per_s": None, "peak_rss_mb": peak_mb}
