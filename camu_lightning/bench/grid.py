"""A benchmark grid from one YAML file: datasets x scenarios x methods (default or tuned configs) x seeds.

    datasets: [mnist, fashion_mnist]
    scenarios: [random, class]      # random: the configs' 10 %; class: every sample of `forget_class`
    forget_fractions: [0.15, 0.2]   # optional: random removal of these fractions instead (rows under random15, ...)
    methods: [retrain, camu, ngrad]  # configs/<dataset>_<method>.yaml (class removal: <dataset>_<method>_class if any)
    variants: [default, tuned]       # tuned: configs/tuned/<dataset>_<scenario>_<method>.yaml, where one exists
    seeds: [1, 2, 3]
    root: ../shared/data             # data.root of every run
    forget_class: 0                  # or a list, [1, 2]: one scenario per class (rows under class1, class2)
    overrides: []                    # more `camu fit` options for every run
    sweep: {method: camu, setting: trainer.max_epochs, values: [1, 2, 3]}   # optional: one cell per value,
                                     # rows named <method>_max_epochs<value> (the fast-preset study)
    label: relearn                   # optional: rows named <method>_<label>, for a study whose overrides measure
                                     # more than the paper's tables (RQ3's --relearn_epochs) beside the plain rows
    another_init: 1000               # optional: each seed k runs as seed k + 1000 on seed k's D_f and D_r (rows
                                     # <method>_anotherinit): the Retrain of another init that measures the floor
    blocks: [{datasets: [mnist], methods: [l1_sparse], variants: [tuned]}, ...]   # optional: several grids in
                                     # one file, each block's keys over the file's own

A tuned variant uses the config searched on the main table's setting (`configs/tuned/<dataset>_random_<method>.yaml`
for any random fraction, `..._class0_...` for any class), since searches run on random 10 % and class 0 only.

Each cell is one `camu fit`; its row is `results/<dataset>/<scenario>/<method>[_tuned]/seed<k>.json`. A cell's
config hash is the key of the run its command resolves to (`keys.run_key`: every setting and class default that
decides its numbers, the seed, the package's major version; never data.root), so a row whose hash matches is never
run again, however its config is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import yaml

from camu_lightning.keys import run_key
from camu_lightning.utils.config_files import read_config

SCENARIOS = ("random", "class")
VARIANTS = ("default", "tuned")
TUNED_CLASS = 0  # `camu tune --scenario class` searches on the removal of this class
BLOCK_KEYS = {"datasets", "scenarios", "methods", "variants", "seeds", "root", "forget_class", "forget_fractions",
              "overrides", "sweep", "label", "another_init"}  # fmt: skip
GRID_KEYS = BLOCK_KEYS | {"blocks"}


@dataclass(frozen=True)
class Cell:
    dataset: str
    scenario: str  # "random" (the configs' 10 %), "random<percent>" or "class<c>"
    method: str  # the config's method name, e.g. "ngrad"
    variant: str
    seed: int
    config: str
    overrides: tuple[str, ...]
    suffix: str = ""  # a sweep value's name, e.g. "max_epochs3"
    label: str = ""  # the grid's label, e.g. "relearn"
    init_offset: int = 0  # another_init: the run's seed is seed + this, on seed's own forget set

    @property
    def row(self) -> Path:
        """The row's path under the results folder."""
        name = self.method if self.variant == "default" else f"{self.method}_{self.variant}"
        name = "_".join(part for part in (name, self.suffix, self.label) if part)
        return Path(self.dataset) / self.scenario / name / f"seed{self.seed}.json"

    @cached_property
    def config_hash(self) -> str:
        """The run's key (`keys.run_key`): this cell's `camu fit` command parsed as `camu fit` parses it, so configs
        that resolve to the same run share the key, a class default that changes changes it, and where the data
        and logs live changes nothing."""
        return run_key(resolved_run(self.command(Path("logs"))[1:]))

    @property
    def cache_dir(self) -> Path:
        """The cache folder the run uses: its `--cache_dir` option, else its config's, else camu fit's default."""
        options = list(self.overrides)
        for index, option in enumerate(options):
            if option.startswith("--cache_dir="):
                return Path(option.removeprefix("--cache_dir="))
            if option == "--cache_dir" and index + 1 < len(options):
                return Path(options[index + 1])
        return Path(read_config(self.config).get("cache_dir") or "camu_cache")

    def run_folder(self, logs: Path) -> Path:
        """Where the run writes results.json: beside the other runs of its dataset and scenario, so it finds the
        Retrain of its split there and reports its gaps."""
        return logs / self.dataset / self.scenario / f"{self.row.parent.name}_seed{self.seed}"

    def command(self, logs: Path) -> list[str]:
        """The `camu fit` arguments of this cell."""
        folder = self.run_folder(logs)
        return [
            *("fit", "--config", self.config, *self.overrides, "--seed_everything", str(self.seed + self.init_offset)),
            *("--trainer.default_root_dir", str(folder.parent), "--trainer.enable_progress_bar", "false"),
            "--trainer.logger=lightning.pytorch.loggers.TensorBoardLogger",
            *(f"--trainer.logger.init_args.save_dir={folder.parent}", "--trainer.logger.init_args.name="),
            f"--trainer.logger.init_args.version={folder.name}",
        ]


def read_grid(path: Path) -> dict[str, Any]:
    """The grid file, checked: unknown keys, scenarios and variants are refused by name. Returned as its blocks
    (a file without `blocks:` is one), each complete."""
    try:
        grid = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"grid file {path} is unreadable: {str(error).splitlines()[0]}") from error
    if not isinstance(grid, dict):
        raise ValueError(f"grid file {path} must set datasets, methods and seeds")
    if unknown := set(grid) - GRID_KEYS:
        raise ValueError(f"grid file {path} has unknown keys {sorted(unknown)}; allowed: {sorted(GRID_KEYS)}")
    blocks = grid.pop("blocks", [{}])
    if not (isinstance(blocks, list) and blocks and all(isinstance(block, dict) for block in blocks)):
        raise ValueError(f"grid file {path}: blocks must be a list of mappings, got {blocks!r}")
    return {"blocks": [checked_block(path, grid | block) for block in blocks]}


def checked_block(path: Path, grid: dict[str, Any]) -> dict[str, Any]:
    if not {"datasets", "methods", "seeds"} <= grid.keys():
        raise ValueError(f"grid file {path} must set datasets, methods and seeds (in the file or each block)")
    if unknown := set(grid) - BLOCK_KEYS:
        raise ValueError(f"grid file {path}: a block has unknown keys {sorted(unknown)}; allowed: {sorted(BLOCK_KEYS)}")
    grid = {"scenarios": ["random", "class"], "variants": ["default"], "root": "data", "forget_class": 0,
            "overrides": []} | grid  # fmt: skip
    for key, allowed in (("scenarios", SCENARIOS), ("variants", VARIANTS)):
        if bad := [value for value in grid[key] if value not in allowed]:
            raise ValueError(f"grid {key} {bad} unknown; choose from: {', '.join(allowed)}")
    if not all(isinstance(seed, int) for seed in grid["seeds"]):
        raise ValueError(f"grid seeds must be integers, got {grid['seeds']}")
    classes = grid["forget_class"] if isinstance(grid["forget_class"], list) else [grid["forget_class"]]
    if not (classes and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in classes)):
        raise ValueError(f"grid forget_class must be a class index or a list of them, got {grid['forget_class']}")
    fractions = grid.get("forget_fractions")
    if fractions is not None and not (isinstance(fractions, list) and fractions and
                                      all(isinstance(f, float) and 0 < f < 1 for f in fractions)):  # fmt: skip
        raise ValueError(f"grid forget_fractions must be a list of fractions in (0, 1), e.g. [0.15, 0.2]: {fractions}")
    sweep = grid.get("sweep")
    if sweep is not None and not (isinstance(sweep, dict) and set(sweep) == {"method", "setting", "values"}):
        raise ValueError(f"grid sweep must be {{method, setting, values}}, got {sweep}")
    another = grid.get("another_init", 0)
    if not (isinstance(another, int) and not isinstance(another, bool) and another >= 0):
        raise ValueError(f"grid another_init must be a seed offset >= 1 (e.g. 1000), got {another!r}")
    if another and grid.get("label"):
        raise ValueError("grid another_init names its rows <method>_anotherinit: leave label out")
    label = grid.get("label", "")
    if not (isinstance(label, str) and re.fullmatch(r"([a-z][a-z0-9]*)?", label)):
        raise ValueError(f"grid label must be a lower-case word, e.g. relearn (a row-name suffix), got {label!r}")
    return grid | {"forget_class": classes}


def removals(block: dict[str, Any], scenario: str) -> list[tuple[str, list[str]]]:
    """(row folder, `camu fit` options) of each removal a block's scenario stands for: the configs' own random
    10 % ("random"), each of `forget_fractions` ("random15"), or each class of `forget_class` ("class1")."""
    forget = ["--data.forget_fraction", "null", "--data.forget_classes"]
    if scenario == "class":
        return [(f"class{c}", [*forget, f"[{c}]"]) for c in block["forget_class"]]
    fractions = block.get("forget_fractions")
    if fractions is None:
        return [("random", [])]
    return [(f"random{round(100 * f):d}", ["--data.forget_fraction", str(f)]) for f in fractions]


def cells(grid: dict[str, Any], configs: Path) -> list[Cell]:
    """Every cell of the grid, block by block, each scenario's Retrains first (so later runs find their gap
    partner)."""
    found = []
    for block in grid["blocks"]:
        for dataset in block["datasets"]:
            for scenario in block["scenarios"]:
                for label, removal in removals(block, scenario):
                    for method in sorted(block["methods"], key=lambda name: name != "retrain"):
                        for variant in block["variants"]:
                            config, own = config_of(configs, dataset, scenario, method, variant)
                            if config is None:
                                continue
                            # A config of its own for the scenario (CaMU's class recipe) already removes a class.
                            options = removal[2:] if own and scenario == "class" else removal
                            overrides = ("--data.root", str(block["root"]), *options, *block["overrides"])
                            offset = block.get("another_init", 0)
                            study = "anotherinit" if offset else block.get("label", "")
                            for suffix, more in sweep_points(block.get("sweep"), method):
                                found += [Cell(dataset, label, method, variant, s, str(config),
                                               (*overrides, *more, *same_split(offset, s)), suffix, study, offset)
                                          for s in block["seeds"]]  # fmt: skip
    return found


def same_split(offset: int, seed: int) -> tuple[str, ...]:
    """Options that keep seed's forget set for a run of another seed (`another_init`); none otherwise."""
    return ("--data.forget_split_seed", str(seed)) if offset else ()


def sweep_points(sweep: dict[str, Any] | None, method: str) -> list[tuple[str, tuple[str, ...]]]:
    """(row suffix, options) per swept value for the swept method; one plain cell for any other."""
    if sweep is None or sweep["method"] != method:
        return [("", ())]
    leaf = sweep["setting"].rsplit(".", 1)[-1]
    return [(f"{leaf}{value}", (f"--{sweep['setting']}={value}",)) for value in sweep["values"]]


def method_of(config: Path, dataset: str) -> str:
    """The grid's name of the method a config runs, the inverse of `config_of`:
    configs/<dataset>_<method>[_class].yaml -> <method> (e.g. mnist_camu_class -> camu)."""
    return config.stem.removeprefix(f"{dataset}_").removesuffix("_class")


def config_of(configs: Path, dataset: str, scenario: str, method: str, variant: str) -> tuple[Path | None, bool]:
    """(config, whether it is the scenario's own) of a cell; no config for a tuned variant nobody tuned (the cell
    is left out). A scenario's own config (CaMU's class-removal recipe, a class-0 search) already sets the
    scenario's kind: only the class to forget is passed."""
    if variant == "tuned":
        searched_on = "random" if scenario == "random" else f"class{TUNED_CLASS}"
        tuned = configs / "tuned" / f"{dataset}_{searched_on}_{method}.yaml"
        return (tuned, True) if tuned.is_file() else (None, False)
    if scenario == "class" and (own := configs / f"{dataset}_{method}_class.yaml").is_file():
        return own, True  # CaMU (and its ablations) has a class-removal recipe of its own
    config = configs / f"{dataset}_{method}.yaml"
    if not config.is_file():
        raise ValueError(f"no config {config} for grid method '{method}'")
    return config, False


@cache
def settings_parser() -> Any:
    """`camu fit`'s parser, built once (Lightning is imported here, where a hash is asked for: `camu report` reads
    grids without computing one)."""
    from camu_lightning.run.configured import run_parser

    return run_parser()


def resolved_run(arguments: list[str]) -> dict[str, Any]:
    """The settings `camu fit <arguments>` runs with, every default in place."""
    return settings_parser().parse_args(arguments).as_dict()
