# camu-lightning — every target installs what it needs (`make install` is a no-op once .venv is current).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test test-all lint format tensorboard bench report bench-speed gpu-check clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv with torch 2.14.1 / torchvision 0.29.1 and the package (once)

demo: $(STAMP)  ## CaMU beside Retrain on the embedded MNIST digits (offline, under 2 minutes on 2 CPU cores)
	$(BIN)/camu fit --config configs/demo_retrain.yaml --trainer.enable_progress_bar false
	$(BIN)/camu fit --config configs/demo_camu.yaml

test: $(STAMP)  ## the fast test suite (CPU, tiny data, under 5 minutes)
	$(BIN)/pytest -q

test-all: $(STAMP)  ## every test, including slow ones on the real data in ../shared/data
	$(BIN)/pytest -q -m ""

lint: $(STAMP)  ## ruff lint and format check
	$(BIN)/ruff check camu_lightning tests
	$(BIN)/ruff format --check camu_lightning tests

format: $(STAMP)  ## ruff format and autofix
	$(BIN)/ruff format camu_lightning tests
	$(BIN)/ruff check --fix camu_lightning tests

tensorboard: $(STAMP)  ## TensorBoard over lightning_logs/
	$(BIN)/tensorboard --logdir lightning_logs

bench: $(STAMP)  ## the reproduction grid (configs/bench/paper.yaml) into results/, skipping current rows (hours)
	$(BIN)/camu bench --grid configs/bench/paper.yaml

report: $(STAMP)  ## docs/reproduction.md, tables, figures and README's results table from the committed rows (no training)
	$(BIN)/camu report --grid configs/bench/paper.yaml --grid configs/bench/relearn.yaml --grid configs/bench/appendix.yaml \
		--grid configs/bench/five_seeds.yaml --grid configs/bench/floor.yaml --readme README.md

bench-speed: $(STAMP)  ## CaMU loop / training / evaluation speed on ../shared/data MNIST (about 15 minutes on 2 cores)
	$(BIN)/python -m camu_lightning.speed.benchmark --root ../shared/data --scenarios random class --e2e

gpu-check: $(STAMP)  ## on a CUDA machine: gpu tests, CaMU ResNet-18 at 32/bf16/16 bits, DDP, suite speed (one table)
	$(BIN)/python -m camu_lightning.speed.gpu_check

clean:  ## remove run outputs and caches (not .venv)
	rm -rf lightning_logs camu_cache .pytest_cache .ruff_cache
