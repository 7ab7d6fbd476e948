"""Speed benchmark: the CaMU loop, original/Retrain training, evaluation and split construction, in one process.

    python -m camu_lightning.speed.benchmark --root ../shared/data --scenarios random class [--epochs 3] [--e2e]

The CaMU loop runs three ways on the same tuples, seed and epochs:
(a) naive: plain PyTorch with per-sample Datasets and DataLoader(batch 32, shuffle) over the tuples and over
    S, six forwards and two backwards per batch in camu.md section 4's order;
(b) suite: the CaMU LightningModule through the real Trainer (what `camu fit` runs), timed as camu.md section 8
    times it (tuple construction + the loop), with the configs' memory layout (`--layout`);
(c) limit: plain PyTorch on in-memory tensors with every exact shortcut of camu.md section 11, same layout as (b).
Before timing, (b) runs one epoch recording its batch order and (a) and (c) replay that order: all three must
reach the same weights. Rows are timed in rotation, (a) (b) (c) then again, `--repeats` times; the table shows
each row's median and a ratio is the median of the per-rotation ratios: with two torch threads, this shared
2-core machine drifts by 20 % within a minute, which one pass per row would mistake for a speed-up or a loss
(`--threads 1` drifts less, though not by nothing: 3 % to 8 % between passes in our runs).
The frozen-output shortcut computes each frozen embedding once per run instead of once per epoch, so it only
shows from the second epoch on (the configs run 10). Peak RSS is the process's high-water mark after each row.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch

from camu_lightning.channels_last import ChannelsLast
from camu_lightning.methods import CaMU
from camu_lightning.models import CNN
from camu_lightning.run import ServeStreams, UnlearningClock
from camu_lightning.speed.camu_loops import SETTINGS, PerSampleImages, limit_camu, naive_camu
from camu_lightning.speed.measure import (
    console,
    machine,
    row_results,
    show,
    speed_ratio,
    stopwatch,
    timed_in_rotation,
)
from camu_lightning.speed.rows import (
    datamodule_for,
    end_to_end_row,
    evaluation_row,
    quiet_trainer,
    split_row,
    training_rows,
)
from camu_lightning.utils.terminal import set_up_terminal

LAYOUTS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}


class OrderRecorder(L.Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        self.orders = getattr(self, "orders", []) + [([], [])]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.orders[-1][0].extend(batch["counterfactual"]["index"].tolist())
        self.orders[-1][1].extend(batch["remain_sample"]["index"].tolist())


def suite_camu(datamodule, state, epochs, callbacks=(), precision="32-true") -> tuple[CaMU, UnlearningClock]:
    """CaMU as the suite runs it (its data request served, its clock a callback): the method and the clock."""
    torch.manual_seed(0)
    datamodule.tuples = None  # rebuilt inside the timer, as in a real run
    method = CaMU(CNN, datamodule.num_classes, datamodule.input_shape, seed=0, **SETTINGS)
    method.load_original(state)
    clock = UnlearningClock()
    run = [ServeStreams(), clock, *callbacks]
    quiet_trainer(max_epochs=epochs, callbacks=run, precision=precision).fit(method, datamodule)
    return method, clock


def replayed_networks(datamodule, state) -> dict[str, torch.nn.Module]:
    """One epoch of (b), then of (a) and (c) replaying (b)'s batch order, in float64, where reordered sums (the
    shortcuts) differ by ~1e-16 and Adam cannot amplify rounding as it does in float32; and the start."""
    recorder = OrderRecorder()
    suite, _ = suite_camu(datamodule, state, 1, [recorder], precision="64-true")
    original = CNN(datamodule.num_classes, datamodule.input_shape)
    original.load_state_dict(state)
    original.double().eval()
    x_train, y_train = datamodule.arrays.x_train, datamodule.arrays.y_train
    sample = torch.from_numpy(datamodule.split.sample)
    tuples = datamodule.build_tuples()
    naive, limit = copy.deepcopy(original), copy.deepcopy(original)
    per_sample = PerSampleImages(x_train, y_train, sample, torch.float64)
    naive_camu(naive, original, tuples, per_sample, 1, recorder.orders, torch.float64)
    in_memory = dataclasses.replace(
        tuples, x_forget=tuples.x_forget.double(), x_counterfactual=tuples.x_counterfactual.double()
    )
    x_sample = (x_train[sample].float() / 255).double()  # scaled in float32 as the data module does
    limit_camu(limit, original, in_memory, x_sample, y_train[sample], 1, recorder.orders)
    return {"start": original, "naive": naive, "suite": suite.network, "limit": limit}


def max_difference(first: torch.nn.Module, second: torch.nn.Module) -> float:
    pairs = zip(first.parameters(), second.parameters(), strict=True)
    return max(float((a - b).detach().abs().max()) for a, b in pairs)


def camu_rows(datamodule, state, epochs: int, repeats: int, layout: str) -> list[dict[str, Any]]:
    """Rows (a), (b), (c) of the CaMU loop: each builds its tuples inside its time, as camu.md section 8 says."""
    x_train, y_train = datamodule.arrays.x_train, datamodule.arrays.y_train
    sample = torch.from_numpy(datamodule.split.sample)
    original = CNN(datamodule.num_classes, datamodule.input_shape)
    original.load_state_dict(state)
    memory_format = LAYOUTS[layout]

    def naive() -> None:
        torch.manual_seed(0)
        datamodule.tuples = None
        tuples = datamodule.build_tuples()
        naive_camu(copy.deepcopy(original), original, tuples, PerSampleImages(x_train, y_train, sample), epochs)

    def limit() -> None:
        torch.manual_seed(0)
        datamodule.tuples = None
        tuples = datamodule.build_tuples()
        network = copy.deepcopy(original).to(memory_format=memory_format)
        frozen = copy.deepcopy(original).to(memory_format=memory_format)
        limit_camu(network, frozen, tuples, x_train[sample].float() / 255, y_train[sample], epochs)

    suite_callbacks = [ChannelsLast()] if layout == "channels_last" else []

    def suite() -> float:
        return suite_camu(datamodule, state, epochs, suite_callbacks)[1].elapsed

    seconds = timed_in_rotation(
        {
            "(a) naive loop": lambda: stopwatch(naive),
            f"(b) suite (Trainer, {layout})": suite,
            f"(c) limit loop ({layout})": lambda: stopwatch(limit),
        },
        repeats,
    )
    return row_results(seconds, len(datamodule.build_tuples()) * epochs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="../shared/data", help="folder holding mnist.npz")
    parser.add_argument("--scenarios", nargs="+", default=["random", "class"], choices=("random", "class"))
    parser.add_argument("--epochs", type=int, default=3, help="epochs of each CaMU loop (the configs run 10)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per row, in rotation; median shown")
    parser.add_argument("--layout", choices=tuple(LAYOUTS), default="channels_last", help="memory layout of (b), (c)")
    parser.add_argument("--train_batches", type=int, default=300, help="batches of each training-speed row")
    parser.add_argument("--e2e", action="store_true", help="also time `camu fit` end to end (original cached)")
    parser.add_argument(
        "--threads", type=int, help="torch threads of the in-process rows (default: torch's); 1 drifts less"
    )
    parser.add_argument("--output", type=Path, default=Path("lightning_logs/speed.json"))
    args = parser.parse_args(argv)
    for name in ("epochs", "repeats", "train_batches"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    set_up_terminal()
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no per-Trainer device banners
    torch.manual_seed(0)
    report: dict[str, Any] = {"machine": machine(), "settings": {key: str(value) for key, value in vars(args).items()}}
    console.print(f"machine: {report['machine']}")
    state = CNN(10, (1, 28, 28)).state_dict()  # speed does not depend on the weights
    for scenario in args.scenarios:
        datamodule = datamodule_for(args.root, scenario)
        report[f"split_{scenario}"] = split_row(args.root, scenario)
        networks = replayed_networks(datamodule, state)
        differences = {row: max_difference(networks["suite"], networks[row]) for row in ("naive", "limit")}
        rows = camu_rows(datamodule, state, args.epochs, args.repeats, args.layout)
        title = f"CaMU loop, MNIST {scenario}, {args.epochs} epoch(s), median of {args.repeats} rotations: tuples/s"
        show(title, rows, "tuples/s")
        naive, suite, limit = rows  # (a), (b), (c)
        over_naive, over_limit = speed_ratio(suite, naive), speed_ratio(suite, limit)
        console.print(
            f"speed (b)/(a) = {over_naive:.2f}   (b)/(c) = {over_limit:.2f}   (medians of per-rotation ratios)\n"
            f"max |weights (b) - (a)|, |(b) - (c)| after one replayed epoch (float64) = "
            f"{differences['naive']:.1e}, {differences['limit']:.1e}"
        )
        report[f"camu_{scenario}"] = {
            "rows": rows,
            "suite_over_naive": over_naive,
            "suite_over_limit": over_limit,
            "max_weight_difference": differences,
        }
    datamodule = datamodule_for(args.root, args.scenarios[0])
    rows = training_rows(datamodule, args.train_batches, args.repeats)
    show(f"original/Retrain training, {args.train_batches} batches of 32: samples/s", rows, "samples/s")
    report["training"] = {"rows": rows, "suite_over_in_memory": speed_ratio(rows[0], rows[2])}
    console.print(f"speed suite / in-memory = {report['training']['suite_over_in_memory']:.2f}")
    extra = [evaluation_row(datamodule, state, args.layout), *(report[f"split_{s}"] for s in args.scenarios)]
    if args.e2e:
        extra += [end_to_end_row(args.root, scenario) for scenario in args.scenarios]
    show("evaluation, split construction, end to end", extra, "rows/s")
    report["other"] = extra
    args.output.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.output.with_suffix(".tmp")
    temporary.write_text(json.dumps(report, indent=2))
    temporary.replace(args.output)
    console.print(f"written: {args.output}")


if __name__ == "__main__":
    main()
