"""`camu`: the console entry point. It names the commands and hands each to its module, importing torch and
Lightning only for the commands that run models (`camu --help` and `camu report` start in a fraction of a second)."""

from __future__ import annotations

import sys
from importlib import import_module

from camu_lightning.utils.sigterm import stop_on_sigterm, stop_with_parent

DESCRIPTION = "Unlearn data from a trained classifier and measure the forgetting."
COMMANDS = {  # command: (its module, what it does)
    "fit": ("camu_lightning.cli", "unlearn with one method and measure it (LightningCLI: --config, --model, --data.*)"),
    "tune": ("camu_lightning.commands.tune", "search a method's settings for the smallest gap to Retrain (Optuna)"),
    "score": ("camu_lightning.commands.score", "the NeurIPS 2023 forget-quality score of a method over N seeds"),
    "bench": ("camu_lightning.bench.run", "run a benchmark grid, one committed row per cell, resumable"),
    "report": ("camu_lightning.bench.report", "the reproduction report, tables and figures from the rows"),
}


def overview() -> str:
    """`camu --help`: every command, one line each."""
    lines = [f"usage: camu {{{','.join(COMMANDS)}}} ...", "", DESCRIPTION, "", "commands:"]
    lines += [f"  {name:<7} {about}" for name, (_, about) in COMMANDS.items()]
    return "\n".join([*lines, "", "`camu <command> --help` lists a command's settings."])


def main(args: list[str] | None = None) -> None:
    """Console entry point: known errors end the run with one line and exit status 2; SIGTERM with status 143."""
    given = sys.argv[1:] if args is None else args
    if not given or given[0] in ("-h", "--help"):
        return print(overview())
    stop_on_sigterm()
    stop_with_parent()
    if given[0] in COMMANDS and given[0] != "fit":  # the suite's own commands beside LightningCLI's `fit`
        return import_module(COMMANDS[given[0]][0]).main(given[1:])
    return import_module("camu_lightning.cli").main(given)
