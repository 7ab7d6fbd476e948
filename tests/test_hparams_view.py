"""A finished run's settings and final numbers reach TensorBoard's HParams view, read back from its event file."""

from __future__ import annotations

import json
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from camu_lightning.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_a_runs_event_file_holds_its_settings_and_final_metrics_for_the_hparams_view(tmp_path: Path, tiny_npz: Path):
    main(["fit", "--config", str(REPO / "configs/tuned/mnist_random_ngrad.yaml"), "--data.dataset", str(tiny_npz),
          "--data.eval_batch_size=16", "--original.epochs=1", "--trainer.max_epochs=1", "--seed_everything=2",
          "--trainer.enable_progress_bar=false", "--trainer.enable_checkpointing=false",
          "--trainer.default_root_dir", str(tmp_path), "--cache_dir", str(tmp_path / "cache")])  # fmt: skip
    (results_file,) = tmp_path.glob("**/results.json")
    results = json.loads(results_file.read_text())
    events = EventAccumulator(str(results_file.parent / "hparams"), size_guidance={"scalars": 0})
    events.Reload()
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    settings = HParamsPluginData.FromString(content).session_start_info.hparams
    read = {name: value.string_value or value.number_value for name, value in settings.items()}
    assert read["method"] == "NGrad" and read["dataset"] == str(tiny_npz) and read["scenario"] == "random 6"
    assert read["seed"] == 2 and read["variant"] == "tuned" and read["model/mode"] == "neggrad_plus"
    assert read["model/lr"] == results["config"]["model"]["init_args"]["lr"]
    for key in ("acc_forget", "acc_test", "mia", "mia_auc"):
        (point,) = events.Scalars(f"final/{key}")
        assert abs(point.value - results[key]) < 1e-4, key
