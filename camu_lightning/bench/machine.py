"""The machine a grid row ran on, recorded in the row: numbers and times compare only between like machines."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def boot_id() -> str | None:
    """The kernel's id of this boot (Linux), or None: it tells one sitting from another where host name, CPU count
    and device agree (two cloud VMs named alike can differ 1.3x in speed and in float kernels)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def machine() -> dict[str, Any]:
    """What ran the row: host, boot, CPU count and model, Python, torch and the first CUDA device, if any."""
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return {"host": platform.node(), "boot": boot_id(), "cpus": os.cpu_count(), "cpu_model": cpu_model(),
            "python": platform.python_version(), "torch": torch.__version__, "device": device}  # fmt: skip


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo, else the platform's processor string): float kernels and speed
    differ between models that share a core count."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
