"""Shared fixtures: tiny generated datasets, a shrunk Trainer, paths to the shared real data."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def make_image_npz(
    path: Path,
    num_train: int = 60,
    num_test: int = 30,
    num_classes: int = 3,
    size: int = 8,
    channels: int = 1,
    seed: int = 0,
    noise: int = 60,
    contrast: int = 180,
) -> Path:
    """Toy images: class c lights up row band c by `contrast` over uniform noise in [0, noise); labels cycle through
    the classes. The defaults separate the classes at a glance; a low contrast makes the metrics move with the
    weights."""
    rng = np.random.default_rng(seed)

    def images(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(count) % num_classes
        pixels = rng.integers(0, noise, size=(count, size, size, channels))
        band = size // num_classes
        for index, label in enumerate(labels):
            pixels[index, label * band : (label + 1) * band] += contrast
        pixels = pixels.astype(np.uint8)
        return (pixels[..., 0] if channels == 1 else pixels), labels.astype(np.uint8)

    x_train, y_train = images(num_train)
    x_test, y_test = images(num_test)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture
def tiny_npz(tmp_path: Path) -> Path:
    return make_image_npz(tmp_path / "tiny.npz")


@pytest.fixture
def tiny_rgb_npz(tmp_path: Path) -> Path:
    return make_image_npz(tmp_path / "tiny_rgb.npz", size=32, channels=3, num_classes=4, num_train=64, num_test=32)


def datamodule_for(dataset: Path, **overrides):
    """An UnlearningDataModule on a .npz file: random 20 %, the project's data settings, split seed 0."""
    from camu_lightning.data import UnlearningDataModule

    settings = dict(
        dataset=str(dataset),
        forget_fraction=0.2,
        forget_repeat=1,
        split_seed=0,
        cf_label_rule="keep_remain",
        pipeline="plain",
        mia_attack_size=4000,
        eval_batch_size=64,
    )
    return UnlearningDataModule(**(settings | overrides))


@pytest.fixture
def tiny_datamodule(tiny_npz: Path):
    return datamodule_for(tiny_npz, eval_batch_size=16)


@pytest.fixture
def make_trainer(tmp_path: Path):
    def make(**overrides) -> L.Trainer:
        settings = dict(
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            max_steps=2,
            num_sanity_val_steps=0,
            default_root_dir=tmp_path,
        )
        return L.Trainer(**(settings | overrides))

    return make


@pytest.fixture
def shared_mnist() -> Path:
    path = SHARED_DATA / "mnist.npz"
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    return path


def instantiated_cli(*args: str):
    """The CLI's parser, linking and instantiation for these arguments, without running a subcommand."""
    from camu_lightning.cli import CamuCLI
    from camu_lightning.data import UnlearningDataModule
    from camu_lightning.methods import UnlearningMethod

    return CamuCLI(
        UnlearningMethod, UnlearningDataModule, subclass_mode_model=True, auto_configure_optimizers=False, run=False,
        args=list(args),
    )  # fmt: skip


def fit(trainer: L.Trainer, module: L.LightningModule, datamodule):
    """`trainer.fit` with the run's data request served (`ServeStreams`) and its unlearning clock, as a Trainer a
    user builds with the run's callbacks would; returns the clock."""
    from camu_lightning.run import ServeStreams, UnlearningClock

    for kind in (ServeStreams, UnlearningClock):
        if not any(isinstance(callback, kind) for callback in trainer.callbacks):
            trainer.callbacks.append(kind())
    trainer.fit(module, datamodule=datamodule)
    return next(callback for callback in trainer.callbacks if isinstance(callback, UnlearningClock))
