"""The unlearning clock (metrics.md section 3) as a Lightning callback, in the manner of Lightning's `Timer`."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn


class UnlearningClock(L.Callback):
    """Wall-clock seconds of the unlearning: from fit start (before the method's own `on_fit_start`, where SSD, SISA
    and Unroll do all their work) to fit end (after its `on_train_end`, where SCRUB rewinds), paused while Lightning
    validates. The time every RTE divides by: `elapsed` once fit has returned. Beside it `cpu_elapsed`, the process's
    CPU seconds over the same spans (every thread's), which a machine shared with other work inflates far less.
    """

    def __init__(self) -> None:
        self.elapsed = self.cpu_elapsed = 0.0
        self._started_at: tuple[float, float] | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.elapsed = self.cpu_elapsed = 0.0
        self._started_at = (time.perf_counter(), time.process_time())

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._pause()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Inside fit the trainer's stage is "validating" here, so ask which entry point runs, not the stage.
        if trainer.state.fn == TrainerFn.FITTING and self._started_at is None:
            self._started_at = (time.perf_counter(), time.process_time())

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":  # the final weights exist once the device has computed them
            torch.cuda.synchronize(pl_module.device)
        self._pause()

    def _pause(self) -> None:
        if self._started_at is not None:
            self.elapsed += time.perf_counter() - self._started_at[0]
            self.cpu_elapsed += time.process_time() - self._started_at[1]
            self._started_at = None

    def state_dict(self) -> dict[str, Any]:
        return {"elapsed": self.elapsed, "cpu_elapsed": self.cpu_elapsed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.elapsed, self.cpu_elapsed = state_dict["elapsed"], state_dict.get("cpu_elapsed", 0.0)
