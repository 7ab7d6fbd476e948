"""Config files that name other files: `data: data/mnist.yaml` and `original: original/cnn.yaml` in a method's
config hold a dataset's settings and a recipe in one file each. jsonargparse reads such a reference as the group's
settings (relative to the config's folder), so `camu fit --config` and `--print_config` see the complete config;
`read_config` resolves them alike for the tools that read config files themselves (the grid's hashes, tune)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

GROUPS = ("data", "original", "trainer", "model")  # the config's groups that may be a file of their own


def read_config(path: str | Path) -> dict[str, Any]:
    """The config file's settings with every group given as a file read in place."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config {path} does not exist")
    try:
        settings = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ValueError(f"config {path} is unreadable: {error}") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ValueError(f"config {path} is not valid YAML{where}: {getattr(error, 'problem', error)}") from None
    if not isinstance(settings, dict):
        raise ValueError(f"config {path} must be a mapping of settings")
    for group in GROUPS:
        value = settings.get(group)
        if isinstance(value, str) and value.endswith((".yaml", ".yml")):
            settings[group] = read_config(path.parent / value)
    return settings


def check_config_options(args: list[str]) -> None:
    """Read every `--config`/`-c` file of a command line (and the files it names), so that a missing or malformed
    one is named in a one-line error before the parser reports it as `config: invalid value`."""
    for index, arg in enumerate(args):
        if arg in ("--config", "-c") and index + 1 < len(args):
            read_config(args[index + 1])
        elif arg.startswith("--config="):
            read_config(arg.removeprefix("--config="))
