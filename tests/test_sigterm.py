"""SIGTERM ends a `camu` process at once with status 143, wherever it lands: Lightning alone only sets a flag its
loops read between batches, so a signal landing after a fit's last check was lost (SISA trained on through every
remaining stage) and a stop it did catch exited with status 0."""

from __future__ import annotations

import os
import signal

import lightning as L
import pytest

from camu_lightning.utils.sigterm import EXIT_STATUS, stop_on_sigterm
from tests.conftest import datamodule_for
from tests.test_cli import run_camu


class SigtermAtTrainEnd(L.Callback):
    """Sends this process SIGTERM after the fit loop's last look at Lightning's flag."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        os.kill(os.getpid(), signal.SIGTERM)


@pytest.fixture
def restore_sigterm():
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


def test_a_sigterm_at_the_end_of_a_sisa_stage_stops_before_the_next_stage(tiny_npz, restore_sigterm) -> None:
    from camu_lightning.methods import SISA
    from camu_lightning.models import CNN

    datamodule = datamodule_for(tiny_npz)
    method = SISA(
        CNN,
        3,
        datamodule.input_shape,
        seed=0,
        num_shards=2,
        num_slices=3,
        epochs=3,
        lr=1e-3,
        weight_decay=1e-4,
        batch_size=8,
        aggregation="mean_softmax",
        train_rows=datamodule.train_rows,
    )
    quiet = dict(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_checkpointing=False)
    stop_on_sigterm()
    with pytest.raises(SystemExit) as stopped:
        method.create_training_state(
            datamodule, quiet | {"enable_model_summary": False, "callbacks": [SigtermAtTrainEnd()]}
        )
    assert stopped.value.code == EXIT_STATUS == 143
    assert method.trained_stages == [] and method.checkpoints == {}  # the first stage was not recorded as done


def test_camu_fit_stopped_by_sigterm_exits_143_without_results(tmp_path, tiny_npz, restore_sigterm) -> None:
    with pytest.raises(SystemExit) as stopped:
        run_camu(tmp_path, tiny_npz, "--trainer.callbacks+", "tests.test_sigterm.SigtermAtTrainEnd")
    assert stopped.value.code == EXIT_STATUS
    assert not list((tmp_path / "runs").rglob("results.json"))
    assert not [path for path in tmp_path.rglob("*") if path.name.endswith(".tmp")]  # no half-written file
