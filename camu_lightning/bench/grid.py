"""The `camu fit` commands of a comparison grid: every method on one dataset, random 10 % and class removal.

    python -m camu_lightning.bench.grid --dataset mnist --root ../shared/data            # print the commands
    python -m camu_lightning.bench.grid --dataset mnist --root ../shared/data --run      # run them in order

Retrain runs first in each scenario, so every later run finds its result and reports the gap to it.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

METHODS = (
    "retrain",
    "camu",
    "finetune",
    "ngrad",
    "boundary_shrink",
    "boundary_expanding",
    "teacher_student",
    "scrub",
    "sisa",
    "unroll",
)
CLASS_OVERRIDE = ("--data.forget_fraction", "null", "--data.forget_classes")


def commands(
    dataset: str, root: str, scenarios: list[str], methods: list[str], forget_class: int, seed: int, configs: Path
) -> list[list[str]]:
    """One `camu fit` per (scenario, method), Retrain first."""
    runs = []
    for scenario in scenarios:
        for method in sorted(methods, key=lambda name: name != "retrain"):
            if scenario == "class" and method == "camu":  # CaMU's class removal has its own hyperparameters
                config, extra = configs / f"{dataset}_camu_class.yaml", ["--data.forget_classes", f"[{forget_class}]"]
            else:
                config = configs / f"{dataset}_{method}.yaml"
                extra = [*CLASS_OVERRIDE, f"[{forget_class}]"] if scenario == "class" else []
            if not config.is_file():
                raise SystemExit(f"error: no config {config} for method '{method}'")
            runs.append(
                ["camu", "fit", "--config", str(config), "--data.root", root, "--seed_everything", str(seed), *extra]
            )
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=("mnist", "fashion_mnist", "cifar10", "cifar100"))
    parser.add_argument("--root", default="data", help="data root holding <dataset>.npz or torchvision's layout")
    parser.add_argument("--scenarios", nargs="+", default=["random", "class"], choices=("random", "class"))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--forget_class", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--configs", type=Path, default=Path("configs"))
    parser.add_argument("--run", action="store_true", help="run the commands instead of printing them")
    args = parser.parse_args(argv)
    for command in commands(
        args.dataset, args.root, args.scenarios, args.methods, args.forget_class, args.seed, args.configs
    ):
        print(shlex.join(command), flush=True)
        if args.run:
            executable = [str(Path(sys.executable).with_name("camu")), *command[1:]]
            subprocess.run(executable, check=True)


if __name__ == "__main__":
    main()
