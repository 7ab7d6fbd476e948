from pathlib import Path

import numpy as np
import pytest
import torch

from camu_lightning.data.datasets import DATASET_NAMES, load_dataset, load_npz
from camu_lightning.data.transforms import InputPipeline


def test_npz_loader_returns_nchw_uint8_and_labels(tiny_npz: Path, tiny_rgb_npz: Path) -> None:
    gray, rgb = load_npz(tiny_npz), load_npz(tiny_rgb_npz)
    raw = np.load(tiny_rgb_npz)
    assert gray.x_train.shape == (60, 1, 8, 8) and gray.x_train.dtype == torch.uint8
    assert rgb.x_test.shape == (32, 3, 32, 32) and rgb.num_classes == 4
    assert torch.equal(rgb.x_train[5], torch.from_numpy(raw["x_train"][5]).permute(2, 0, 1))
    assert rgb.y_train.tolist() == raw["y_train"].tolist()


def test_shared_mnist_matches_its_published_facts(shared_mnist: Path) -> None:
    mnist = load_dataset("mnist", shared_mnist.parent)
    assert np.bincount(mnist.y_train.numpy()).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.x_train.float().div(255).mean().item() == pytest.approx(0.1307, abs=1e-4)
    assert mnist.input_shape == (1, 28, 28) and len(mnist.y_test) == 10_000


def test_embedded_datasets_load_offline() -> None:
    digits5k = load_dataset("mnist5k")
    assert (len(digits5k.y_train), len(digits5k.y_test)) == (4000, 1000)
    assert np.bincount(digits5k.y_train.numpy()).tolist() == [400] * 10
    digits = load_dataset("sklearn_digits")
    assert digits.input_shape == (1, 8, 8) and len(digits.y_train) + len(digits.y_test) == 1797
    assert digits.x_train.max() == 255


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("imagenet", "unknown data.dataset 'imagenet'; choose from: " + ", ".join(DATASET_NAMES)),
        ("mnist", "dataset 'mnist' not found under data.root="),
        ("missing.npz", "data.dataset file missing.npz does not exist"),
    ],
)
def test_bad_dataset_names_fail_with_one_line(name: str, message: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises((ValueError, FileNotFoundError)) as error:
        load_dataset(name, tmp_path, download=False)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_corrupt_or_incomplete_npz_is_refused(tmp_path: Path) -> None:
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_npz(tmp_path / "broken.npz")
    np.savez(tmp_path / "partial.npz", x_train=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="lacks y_train, x_test, y_test"):
        load_npz(tmp_path / "partial.npz")


def test_pipelines_scale_normalise_and_augment_per_sample() -> None:
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    plain = InputPipeline("plain", None, None)
    assert torch.allclose(plain.eval(images), images.float() / 255)
    mean, std = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1), torch.tensor([0.2, 0.2, 0.2]).view(1, 3, 1, 1)
    cifar = InputPipeline("cifar32", (0.5, 0.4, 0.3), (0.2, 0.2, 0.2))
    assert torch.allclose(cifar.eval(images), (images.float() / 255 - mean) / std, atol=1e-6)
    torch.manual_seed(0)
    views = (cifar.train(images) * std + mean) * 255
    # Each view is a 32x32 window of the zero-padded image, possibly flipped: check against a brute-force search.
    padded = torch.nn.functional.pad(images.float(), (4, 4, 4, 4))
    for view, image in zip(views.round(), padded, strict=True):
        windows = [image[:, top : top + 32, left : left + 32] for top in range(9) for left in range(9)]
        assert any(torch.equal(view, w) or torch.equal(view, w.flip(-1)) for w in windows)
    assert not all(torch.equal(v, i.float()) for v, i in zip(views.round(), images, strict=True))
    resized = InputPipeline("imagenet224", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert resized.train(images[:2]).shape == (2, 3, 224, 224) == resized.eval(images[:2]).shape
