"""`make gpu-check` on a machine without CUDA: one line and exit 0; its CPU fallbacks run every check."""

from __future__ import annotations

import pytest

from camu_lightning.speed import gpu_check


def test_without_cuda_the_gpu_check_skips_with_one_line(capsys, monkeypatch) -> None:
    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    gpu_check.main([])
    assert capsys.readouterr().out.strip().startswith("gpu-check: no CUDA device here; skipped")


@pytest.mark.slow  # about a minute on 2 cores: every precision, two processes and the speed rows (make test-all)
def test_the_cpu_fallbacks_fit_every_precision_under_one_and_two_processes(capsys) -> None:
    try:
        gpu_check.main(["--accelerator", "cpu", "--rows", "48", "--speed_rows", "120"])
    except SystemExit as exit_info:
        pytest.fail(f"gpu-check failed ({exit_info.code}): {capsys.readouterr().out[-2000:]}")
    table = capsys.readouterr().out
    for row in ("32-true", "bf16-mixed", "2 devices", "suite CaMU loop"):
        assert row in table
    assert table.count(" ok ") >= 5
