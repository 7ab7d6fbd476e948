"""`make gpu-check`: everything that needs an accelerator, in one command and one table.

    python -m camu_lightning.speed.gpu_check                      # on a CUDA machine; one line and exit 0 elsewhere
    python -m camu_lightning.speed.gpu_check --accelerator cpu    # the CPU fallbacks (what the test suite runs)

1. the `gpu`-marked tests;
2. `camu fit` of CaMU on ResNet-18 (configs/cifar10_camu.yaml) with generated 32x32 RGB data at 32-true,
   bf16-mixed and (GPU only) 16-mixed: each run must finish with finite metrics;
3. the same run under DDP on every available device (2 CPU processes in the fallback);
4. speed: the suite's CaMU loop (the speed benchmark's row (b)) on MNIST-shaped generated data, per precision.
The fits are smoke checks (one epoch of a one-epoch original on random images: accuracies near chance are
expected); what they prove is that every precision and the DDP path run through `camu fit` to finite metrics.
Runs 2-3 go through the real entry point in subprocesses, so a crash in one is a failed row, not a lost table.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.table import Table

from camu_lightning.run import ServeStreams, UnlearningClock
from camu_lightning.speed.measure import console
from camu_lightning.utils.terminal import set_up_terminal

REPO = Path(__file__).resolve().parents[2]


def generated_npz(path: Path, num_train: int, num_test: int, shape: tuple[int, ...], num_classes: int) -> Path:
    """Learnable random images: class c brightens band c of the rows (as the test suite's toy data)."""
    rng = np.random.default_rng(0)

    def images(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(count) % num_classes
        pixels = rng.integers(0, 80, size=(count, *shape))
        band = shape[0] // num_classes
        for label in range(num_classes):
            pixels[labels == label, label * band : (label + 1) * band] += 150
        return pixels.astype(np.uint8), labels.astype(np.uint8)

    (x_train, y_train), (x_test, y_test) = images(num_train), images(num_test)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def camu_fit(work: Path, dataset: Path, accelerator: str, precision: str, devices: int, strategy: str) -> dict:
    """One `camu fit` of CaMU on ResNet-18 in a subprocess; its results.json, or the error it printed."""
    command = [sys.executable, "-m", "camu_lightning", "fit", "--config", str(REPO / "configs/cifar10_camu.yaml")]
    command += ["--data.dataset", str(dataset), "--data.eval_batch_size", "256", "--original.epochs", "1"]
    command += ["--trainer.max_epochs", "1", "--trainer.accelerator", accelerator, "--trainer.precision", precision]
    command += ["--trainer.devices", str(devices), "--trainer.strategy", strategy, "--trainer.logger", "false"]
    command += ["--trainer.enable_progress_bar", "false", "--trainer.enable_checkpointing", "false"]
    root = work / f"{precision}-{devices}"
    command += ["--trainer.default_root_dir", str(root), "--cache_dir", str(work / "cache")]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return {"status": f"exit {done.returncode}: {lines[-1] if lines else ''}", "wall_s": wall}
    results = json.loads((root / "results.json").read_text())
    finite = all(np.isfinite(results[key]) for key in ("acc_remain", "acc_forget", "acc_test", "mia"))
    return results | {"status": "ok" if finite else "non-finite metrics", "wall_s": wall}


def suite_speed(accelerator: str, precision: str, num_train: int, work: Path) -> dict[str, Any]:
    """Tuples per second of the suite's CaMU loop (one epoch, CNN, MNIST-shaped data) on the accelerator."""
    import lightning as L

    from camu_lightning.data import UnlearningDataModule
    from camu_lightning.methods import CaMU
    from camu_lightning.models import CNN
    from camu_lightning.speed.camu_loops import SETTINGS

    dataset = generated_npz(work / "mnist_shaped.npz", num_train, num_train // 6, (28, 28), 10)
    datamodule = UnlearningDataModule(
        dataset=str(dataset), forget_fraction=0.1, forget_repeat=1, split_seed=0, cf_label_rule="keep_remain",
        pipeline="plain", mia_attack_size=4000,
    )  # fmt: skip
    method = CaMU(CNN, 10, datamodule.input_shape, seed=0, **SETTINGS)
    method.load_original(method.network.state_dict())
    clock = UnlearningClock()
    trainer = L.Trainer(
        accelerator=accelerator, devices=1, precision=precision, max_epochs=1, logger=False, limit_val_batches=0,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        callbacks=[ServeStreams(), clock],
    )  # fmt: skip
    trainer.fit(method, datamodule)
    return {"status": "ok", "time_unlearn_s": clock.elapsed, "per_s": len(datamodule.split.forget) / clock.elapsed}


def gpu_tests() -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu"], capture_output=True, text=True, cwd=REPO)
    summary = (done.stdout.strip().splitlines() or [""])[-1]
    return {"status": "ok" if done.returncode in (0, 5) else f"exit {done.returncode}", "detail": summary}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accelerator", choices=("gpu", "cpu"), default="gpu", help="cpu: the fallbacks only")
    parser.add_argument("--rows", type=int, default=512, help="training rows of the generated RGB data (test: half)")
    parser.add_argument("--speed_rows", type=int, default=60000, help="training rows of the speed check")
    args = parser.parse_args(argv)
    for name, fewest in (("rows", 16), ("speed_rows", 60)):  # enough for a forget set, S and the attacks' splits
        if getattr(args, name) < fewest:
            parser.error(f"--{name} must be >= {fewest}, got {getattr(args, name)}")
    set_up_terminal()
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no per-Trainer banners between the rows
    if args.accelerator == "gpu" and not torch.cuda.is_available():
        console.print("gpu-check: no CUDA device here; skipped (run it on a GPU machine, or --accelerator cpu)")
        return
    gpu = args.accelerator == "gpu"
    devices = torch.cuda.device_count() if gpu else 2
    precisions = ["32-true", "bf16-mixed", *(["16-mixed"] if gpu else [])]
    table = Table(title=f"gpu-check on {torch.cuda.get_device_name(0) if gpu else 'CPU (fallbacks)'}")
    for column in ("check", "setting", "status", "detail"):
        table.add_column(column)
    rows: list[tuple[str, str, dict[str, Any]]] = []
    if gpu:
        rows.append(("gpu-marked tests", "pytest -m gpu", gpu_tests()))
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        dataset = generated_npz(work / "rgb.npz", args.rows, args.rows // 2, (32, 32, 3), 4)
        for precision in precisions:
            rows.append(
                ("CaMU ResNet-18 fit", precision, camu_fit(work, dataset, args.accelerator, precision, 1, "auto"))
            )
        if devices >= 2:
            strategy = "ddp_find_unused_parameters_true"  # each rank a process of its own (camu fit refuses spawn)
            rows.append(
                (
                    "CaMU ResNet-18 DDP",
                    f"{devices} devices, 32-true",
                    camu_fit(work, dataset, args.accelerator, "32-true", devices, strategy),
                )
            )
        else:
            rows.append(("CaMU ResNet-18 DDP", "1 device", {"status": "skipped: needs 2 devices"}))
        for precision in precisions:
            rows.append(
                ("suite CaMU loop speed", precision, suite_speed(args.accelerator, precision, args.speed_rows, work))
            )
    for check, setting, result in rows:
        detail = result.get("detail") or "  ".join(
            f"{key} {result[key]:.2f}"
            for key in ("acc_test", "mia", "time_unlearn_s", "wall_s", "per_s")
            if key in result
        )
        table.add_row(check, setting, result["status"], detail)
    console.print(table)
    failed = [
        f"{check} ({setting})"
        for check, setting, result in rows
        if result["status"] not in ("ok",) and not result["status"].startswith("skipped")
    ]
    if failed:
        console.print(f"gpu-check: failed: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
