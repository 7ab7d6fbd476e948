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
    try:
        settings = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"config {path} is unreadable: {str(error).splitlines()[0]}") from error
    if not isinstance(settings, dict):
        raise ValueError(f"config {path} must be a mapping of settings")
    for group in GROUPS:
        value = settings.get(group)
        if isinstance(value, str) and value.endswith((".yaml", ".yml")):
            settings[group] = read_config(path.parent / value)
    return settings
