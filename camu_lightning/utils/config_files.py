"""Config files that name other files: `data: data/mnist.yaml` and `original: original/cnn.yaml` in a method's
config hold a dataset's settings and a recipe in one file each. jsonargparse reads such a reference as the group's
settings (relative to the config's folder), so `camu fit --config` and `--print_config` see the complete config;
`read_config` resolves them alike for the tools that read config files themselves (tune, the fast preset), and
`config_with` writes a config that changes some settings of another and keeps its file references."""

from __future__ import annotations

import os
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


def config_with(config: str | Path, out: str | Path, values: dict[str, Any], header: list[str]) -> str:
    """The text of a config at `out` that runs alone: `config` with the dotted `values` set (e.g.
    {"trainer.max_epochs": 3}) and without its `tune:` block, under `header`'s comment lines. Each group stays a
    file reference where one serves (the config's own where no value changed the group, else a file of the config
    folder's `<group>/` holding exactly its new settings) and is written out complete otherwise, since a group is
    read from one file or one mapping, never both."""
    config, out = Path(config), Path(out)
    written = yaml.safe_load(config.read_text())  # the groups as the config gives them: file names or mappings
    settings = read_config(config)
    settings.pop("tune", None)
    changed = set()
    for name, value in values.items():
        *parents, leaf = name.split(".")
        node = settings
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
        changed.add(name.split(".")[0])
    for group in GROUPS:
        if group not in changed and isinstance(written.get(group), str):
            file = config.parent / written[group]
        else:
            candidates = sorted((config.parent / group).glob("**/*.yaml")) if group in changed else []
            file = next((path for path in candidates if read_config(path) == settings.get(group)), None)
        if file is not None:
            settings[group] = Path(os.path.relpath(file, out.parent)).as_posix()
    return "".join(f"# {line}\n" for line in header) + yaml.safe_dump(settings, sort_keys=False)
