"""The Python API: the README's block, the same numbers as `camu fit`, any classifier, any dataset, a method
defined outside the package."""

from __future__ import annotations

import ast
import json
import re
from importlib import import_module
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from camu_lightning import UnlearningDataModule, WithEmbedding, unlearn
from camu_lightning.channels_last import ChannelsLast
from camu_lightning.cli import main
from camu_lightning.methods import NetworkFactory, UnlearningMethod
from camu_lightning.metrics import ATTACK_KEYS
from camu_lightning.models import CNN
from camu_lightning.original import OriginalRecipe
from camu_lightning.utils.config_files import read_config
from tests.conftest import make_image_npz

REPO = Path(__file__).resolve().parents[1]
METRICS = ("acc_remain", "acc_forget", "acc_test", "mia", *ATTACK_KEYS)
QUIET = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False}


class GradientAscent(UnlearningMethod):
    """A method defined outside the package (docs/adding_a_method.md): descend on D_r, ascend on D_f.

    Args:
        lr: SGD learning rate.
        batch_size: of both streams.
    """

    def __init__(
        self, network: NetworkFactory, num_classes: int, input_shape: tuple[int, int, int], seed: int, lr: float,
        batch_size: int,
    ) -> None:  # fmt: skip
        super().__init__(network, num_classes, input_shape, seed)

    def train_streams(self) -> dict[str, int]:
        return {"forget": self.hparams.batch_size, "remain": self.hparams.batch_size}

    def training_step(self, batch, batch_idx):
        forget, remain = batch["forget"], batch["remain"]
        loss = F.cross_entropy(self.network(remain["x"])[0], remain["y"]) - 0.1 * F.cross_entropy(
            self.network(forget["x"])[0], forget["y"]
        )
        self.check_finite(loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.network.parameters(), lr=self.hparams.lr)


def readme_python_block() -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Python API") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_python_api_block_runs(capsys) -> None:
    namespace: dict = {}
    exec(compile(readme_python_block(), "README.md", "exec"), namespace)
    retrain, results = namespace["retrain"], namespace["results"]
    assert results["method"] == "CaMU" and retrain["method"] == "Retrain" and results["original_source"] == "given"
    # The gaps are the differences to the Retrain run handed in (metrics.md section 4), computed here by hand.
    table = ("acc_remain", "acc_forget", "acc_test", "mia")
    assert results["avg_gap"] == pytest.approx(np.mean([abs(results[k] - retrain[k]) for k in table]))
    assert results["rte"] == pytest.approx(retrain["time_unlearn_s"] / results["time_unlearn_s"])
    assert "forget accuracy" in capsys.readouterr().out


def instantiate(class_path: str):
    module, _, name = class_path.rpartition(".")
    return getattr(import_module(module), name)


SHRINK = {"CaMU": {}, "Retrain": {}, "SISA": {"num_shards": 2, "num_slices": 2, "epochs": 2}}
CONFIGS = {"CaMU": "configs/demo_camu.yaml", "Retrain": "configs/demo_retrain.yaml", "SISA": "configs/mnist_sisa.yaml"}


def cli_run(tmp_path: Path, dataset: Path, method: str) -> dict:
    shrink = [f"--model.init_args.{key}={value}" for key, value in SHRINK[method].items()]
    main(
        ["fit", "--config", str(REPO / CONFIGS[method]), "--data.dataset", str(dataset), "--data.eval_batch_size=16",
         "--trainer.max_epochs", "1" if method == "SISA" else "2", "--original.epochs=2", *shrink,
         "--trainer.enable_progress_bar=false", "--trainer.logger=false", "--trainer.enable_checkpointing=false",
         "--trainer.default_root_dir", str(tmp_path / "runs"), "--cache_dir", str(tmp_path / "cache")]
    )  # fmt: skip
    return json.loads((tmp_path / "runs" / "results.json").read_text())


def api_run(tmp_path: Path, dataset: Path, method: str, retrain: dict | None) -> dict:
    """The same run built by hand from Python: the config file read as plain YAML, no CLI and no
    `limit_train_batches` (SISA's config sets it; the method needs no such setting)."""
    settings = read_config(REPO / CONFIGS[method])
    seed = settings["seed_everything"]
    L.seed_everything(seed)
    data = UnlearningDataModule(**(settings["data"] | {"dataset": str(dataset), "eval_batch_size": 16}))
    method_class = instantiate(settings["model"]["class_path"])
    init = {k: v for k, v in settings["model"]["init_args"].items() if k != "network"} | SHRINK[method]
    unlearner = method_class(network=CNN, seed=seed, **data.links(method_class), **init)
    trainer = L.Trainer(
        max_epochs=1 if method == "SISA" else 2,
        check_val_every_n_epoch=settings["trainer"]["check_val_every_n_epoch"],
        num_sanity_val_steps=0,
        callbacks=[ChannelsLast()],
        default_root_dir=tmp_path,
        **QUIET,
    )
    recipe = OriginalRecipe(**(settings["original"] | {"epochs": 2}))
    return unlearn(unlearner, data, trainer, original=recipe, retrain=retrain, verbose=False)


@pytest.mark.parametrize("method", ["CaMU", "SISA"])
def test_the_python_api_and_camu_fit_give_identical_numbers(tmp_path: Path, tiny_npz: Path, method: str) -> None:
    cli_retrain = cli_run(tmp_path / "cli", tiny_npz, "Retrain")
    api_retrain = api_run(tmp_path / "api", tiny_npz, "Retrain", None)
    assert {k: api_retrain[k] for k in METRICS} == {k: cli_retrain[k] for k in METRICS}
    cli, api = cli_run(tmp_path / "cli", tiny_npz, method), api_run(tmp_path / "api", tiny_npz, method, api_retrain)
    compared = [*METRICS, *(f"original_{key}" for key in METRICS), "avg_gap", "tow", "split_key"]
    assert "avg_gap" in cli and {k: api[k] for k in compared} == {k: cli[k] for k in compared}


def test_the_embedding_of_a_plain_classifier_is_its_heads_input_or_a_named_layers_output() -> None:
    from torchvision.models import resnet18
    from torchvision.models.feature_extraction import create_feature_extractor

    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.ReLU(), nn.Linear(7, 3))
    x = torch.rand(5, 1, 3, 4)
    logits, embedding = WithEmbedding(mlp)(x)
    assert torch.equal(logits, mlp(x)) and torch.allclose(embedding, torch.relu(mlp[1](x.flatten(1))))
    resnet = resnet18(num_classes=4).eval()
    images = torch.rand(2, 3, 32, 32)
    reference = create_feature_extractor(resnet, {"flatten": "features", "layer4": "layer4"})(images)
    logits, embedding = WithEmbedding(resnet)(images)
    assert torch.allclose(embedding, reference["features"]) and torch.allclose(logits, resnet(images))
    assert torch.allclose(WithEmbedding(resnet, layer="layer4")(images)[1], reference["layer4"].flatten(1))
    with pytest.raises(ValueError, match="has no layer 'head'"):
        WithEmbedding(resnet, layer="head")


def method_settings(name: str) -> tuple[type, dict]:
    """A method's class and its MNIST config's settings, shrunk to a few steps on tiny data."""
    config = "mnist_camu_class" if name == "camu" else f"mnist_{name}"
    model = read_config(REPO / "configs" / f"{config}.yaml")["model"]
    init = {k: v for k, v in model["init_args"].items() if k != "network"}
    shrink = {"num_shards": 2, "num_slices": 1, "epochs": 1} if name == "sisa" else {}
    return instantiate(model["class_path"]), init | shrink


METHODS = ["retrain", "camu", "finetune", "ngrad", "boundary_shrink", "boundary_expanding", "teacher_student",
           "scrub", "sisa", "unroll", "salun", "ssd", "l1_sparse"]  # fmt: skip


@pytest.mark.parametrize(  # ResNet-18: 12 s, its BatchNorm in every method (make test-all)
    "architecture", ["mlp", pytest.param("resnet18", marks=pytest.mark.slow)]
)
def test_every_method_unlearns_a_plain_classifier(tmp_path: Path, architecture: str) -> None:
    """torchvision's ResNet-18 (no weights) and an MLP, given as they are: every method runs, the original it
    evaluates is the given model (its accuracy, computed here by hand), and Retrain and SISA start afresh."""
    from torchvision.models import resnet18

    dataset = make_image_npz(tmp_path / "rgb.npz", size=16, channels=3, num_classes=4, num_train=32, num_test=16)
    data = UnlearningDataModule(dataset=str(dataset), forget_fraction=0.25, mia_attack_size=8, eval_batch_size=64)
    images = data.arrays.x_train.float() / 255
    for name in METHODS:
        torch.manual_seed(0)
        if architecture == "mlp":
            model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 16), nn.ReLU(), nn.Linear(16, 4))
        else:
            model = resnet18(num_classes=4)
        before = {key: value.clone() for key, value in model.state_dict().items()}
        model.eval()
        with torch.no_grad():
            predicted = model(images[torch.from_numpy(data.split.forget)]).argmax(1)
        expected_forget_accuracy = 100 * (predicted == data.arrays.y_train[data.split.forget]).float().mean().item()
        method_class, init = method_settings(name)
        method = method_class(network=model, seed=0, **data.links(method_class), **init)
        epochs = method_class.epoch_range[1] or 1
        trainer = L.Trainer(max_epochs=epochs, max_steps=2 if epochs > 1 else -1, default_root_dir=tmp_path, **QUIET)
        results = unlearn(method, data, trainer, verbose=False, stronger_attacks=False)
        assert results["status"] == "ok" and all(0 <= results[key] <= 100 for key in ("acc_forget", "acc_test"))
        if method_class.starts_from_original and method.training_state_settings() is None:  # not Unroll's pass
            assert results["original_acc_forget"] == pytest.approx(expected_forget_accuracy, abs=1e-4), name
        if not method_class.starts_from_original:  # a fresh network: the given model is left as it was
            assert all(torch.equal(before[key], value) for key, value in model.state_dict().items()), name


def test_the_data_module_takes_map_style_datasets_with_the_npz_paths_numbers(tmp_path: Path, tiny_npz: Path) -> None:
    """A TensorDataset holding the .npz file's images (as ToTensor's float [0, 1] CHW tensors) gives the same split,
    the same evaluation rows and the same run as the file itself."""
    with np.load(tiny_npz) as npz:
        arrays = {key: npz[key] for key in npz.files}

    def tensors(key: str) -> TensorDataset:
        return TensorDataset(
            torch.from_numpy(arrays[f"x_{key}"]).float()[:, None] / 255, torch.from_numpy(arrays[f"y_{key}"])
        )

    runs = []
    for source in ({"dataset": str(tiny_npz)}, {"train": tensors("train"), "test": tensors("test")}):
        data = UnlearningDataModule(**source, forget_classes=[1], split_seed=3, mia_attack_size=8, eval_batch_size=16)
        L.seed_everything(0)
        method_class, init = method_settings("finetune")
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 3))
        method = method_class(network=model, seed=0, **data.links(method_class), **init)
        trainer = L.Trainer(max_epochs=1, default_root_dir=tmp_path, **QUIET)
        runs.append(unlearn(method, data, trainer, verbose=False))
        assert torch.equal(data.arrays.x_train[:, 0], torch.from_numpy(arrays["x_train"]))
    assert {k: runs[0][k] for k in METRICS} == {k: runs[1][k] for k in METRICS}
    assert runs[0]["num_forget"] == runs[1]["num_forget"] == int((arrays["y_train"] == 1).sum())
    with pytest.raises(ValueError, match="set data.dataset, or both data.train and data.test"):
        UnlearningDataModule(train=tensors("train"), forget_fraction=0.1)


def test_a_method_defined_outside_the_package_runs_through_the_api_and_camu_fit(tmp_path: Path, tiny_npz: Path):
    recipe = read_config(REPO / "configs/mnist_ngrad.yaml")
    cli_args = ["fit", "--config", str(REPO / "configs/mnist_ngrad.yaml"), "--model", "tests.test_api.GradientAscent",
                "--model.init_args.lr=0.01", "--model.init_args.batch_size=8", "--data.dataset", str(tiny_npz),
                "--data.eval_batch_size=16", "--original.epochs=2", "--trainer.max_epochs=2",
                "--trainer.enable_progress_bar=false", "--trainer.logger=false", "--trainer.enable_checkpointing=false",
                "--trainer.default_root_dir", str(tmp_path / "runs"),
                "--cache_dir", str(tmp_path / "cache")]  # fmt: skip
    main(cli_args)
    cli = json.loads((tmp_path / "runs" / "results.json").read_text())
    L.seed_everything(recipe["seed_everything"])
    data = UnlearningDataModule(**(recipe["data"] | {"dataset": str(tiny_npz), "eval_batch_size": 16}))
    method = GradientAscent(
        network=CNN, seed=recipe["seed_everything"], lr=0.01, batch_size=8, **data.links(GradientAscent)
    )
    trainer = L.Trainer(
        max_epochs=2, check_val_every_n_epoch=recipe["trainer"]["check_val_every_n_epoch"], num_sanity_val_steps=0,
        callbacks=[ChannelsLast()], default_root_dir=tmp_path, **QUIET,
    )  # fmt: skip
    api = unlearn(method, data, trainer, original=OriginalRecipe(**(recipe["original"] | {"epochs": 2})), verbose=False)
    assert cli["method"] == api["method"] == "GradientAscent"
    assert {k: api[k] for k in METRICS} == {k: cli[k] for k in METRICS}


def module_imports(path: Path) -> set[str]:
    """The modules a source file imports when it is imported (module level, not inside functions)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return found


def test_importing_the_module_suite_imports_no_benchmark_tool() -> None:
    """Optuna, submitit and matplotlib are the `bench` extra: no module that importing the suite (the package, its
    methods, `unlearn`, `camu fit`) imports, directly or through the package's own modules, imports them, so
    `pip install .` alone runs every method. (A library such as torchmetrics may import matplotlib where it is
    installed; that is not ours.)"""
    package = REPO / "camu_lightning"

    def source(module: str) -> Path | None:
        path = package.parent / module.replace(".", "/")
        return next((p for p in (path / "__init__.py", path.with_suffix(".py")) if p.is_file()), None)

    seen, todo, outside = set(), ["camu_lightning", "camu_lightning.cli", "camu_lightning.methods"], set()
    while todo:
        module = todo.pop()
        if module in seen or (path := source(module)) is None:
            continue
        seen.add(module)
        for name in module_imports(path):
            if name.startswith("camu_lightning"):
                todo.append(name)
            else:
                outside.add(name.split(".")[0])
    assert "camu_lightning.run.unlearn" in seen and "camu_lightning.methods.camu" in seen  # the walk reached them
    assert not outside & {"optuna", "submitit", "matplotlib"}, sorted(outside & {"optuna", "submitit", "matplotlib"})
    # The walk would see one: tune imports it at module level.
    assert "optuna" in module_imports(package / "commands" / "tune.py")


def test_the_cifar_path_reads_torchvisions_on_disk_format(tmp_path: Path, monkeypatch) -> None:
    """What `--data.download true` leaves on disk (torchvision's pickled CIFAR-10 batches), written here with a few
    images each; the checksum check is patched, nothing is downloaded. The rows come back as written, in order."""
    import pickle

    import torchvision.datasets.cifar as cifar

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    written = {}
    for name, _ in (*cifar.CIFAR10.train_list, *cifar.CIFAR10.test_list):
        images = rng.integers(0, 256, (4, 3 * 32 * 32), dtype=np.uint8)  # rows of R, G, B planes, as CIFAR stores
        labels = [int(label) for label in rng.integers(0, 10, 4)]
        written[name] = (images, labels)
        (folder / name).write_bytes(pickle.dumps({"data": images, "labels": labels}))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"class{c}" for c in range(10)]}))
    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)
    data = UnlearningDataModule(dataset="cifar10", root=str(tmp_path), pipeline="cifar32", forget_classes=[0])
    train = [written[name] for name, _ in cifar.CIFAR10.train_list]
    expected = torch.from_numpy(np.concatenate([images for images, _ in train]).reshape(-1, 3, 32, 32))
    assert torch.equal(data.arrays.x_train, expected) and data.input_shape == (3, 32, 32)
    assert data.arrays.y_train.tolist() == [label for _, labels in train for label in labels]
    assert torch.equal(data.arrays.x_test, torch.from_numpy(written["test_batch"][0].reshape(-1, 3, 32, 32)))
    assert data.num_classes == 10 and data.pixel_mean is not None  # CIFAR's pipeline normalises


def test_an_image_folder_is_decoded_once_into_the_data_modules_tensors(tmp_path: Path) -> None:
    """torchvision's ImageFolder (PIL images in class folders) as the train and test sets: pixels and labels arrive
    as written, and the class count is the folder count."""
    from PIL import Image
    from torchvision.datasets import ImageFolder

    rng = np.random.default_rng(0)
    pixels = {}
    for split in ("train", "test"):
        for label, name in enumerate(("cat", "dog", "eel")):
            (tmp_path / split / name).mkdir(parents=True)
            for index in range(4):
                image = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
                Image.fromarray(image).save(tmp_path / split / name / f"{index}.png")
                pixels[(split, label, index)] = image
    train, test = ImageFolder(str(tmp_path / "train")), ImageFolder(str(tmp_path / "test"))
    data = UnlearningDataModule(train=train, test=test, forget_classes=[2], mia_attack_size=4)
    assert data.num_classes == 3 and data.input_shape == (3, 6, 6) and len(data.split.forget) == 4
    expected = np.stack([pixels[("train", label, index)] for label in range(3) for index in range(4)])
    assert torch.equal(data.arrays.x_train, torch.from_numpy(expected).permute(0, 3, 1, 2))
    assert data.arrays.y_train.tolist() == [label for label in range(3) for _ in range(4)]
