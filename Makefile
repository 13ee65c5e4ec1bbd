# sr_lit — `make help` lists the targets. Every target installs first (the .venv stamp), so a fresh clone needs
# only `make train` or `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
TORCH_VERSION ?= 2.13.0
SWEEP ?= ablation_modules
ARGS ?=
# `make train`'s run: empty = chosen for this CPU (sr_lit/cli/quickstart.py: quickstart_bf16 where bf16 is native)
EXPERIMENT ?=

# glibc keeps big tensors' pages instead of returning them each step: up to 2x faster training on CPU
export MALLOC_MMAP_THRESHOLD_ := 4294967296
export MALLOC_TRIM_THRESHOLD_ := 4294967296
export SR_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: help install train test test-full lint format bench sweep gpu-check clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU torch wheel first: otherwise pip resolves a multi-GB CUDA build
	$(PY) -m pip install -q torch==$(TORCH_VERSION)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv: CPU torch, then sr_lit editable with dev extras

train: $(STAMP) ## the default run: edsr_tiny+MMCA+HPF x2 on scikit-image photos, validated on Set5 (6-9 min on 2 CPU cores)
	@exp="$(EXPERIMENT)"; [ -n "$$exp" ] || exp=$$($(PY) -m sr_lit.cli.quickstart) || exit 1; \
	echo "make train: experiment=$$exp (bf16 where this CPU computes it natively; EXPERIMENT=quickstart|quickstart_bf16 to choose)"; \
	$(VENV)/bin/sr-train experiment=$$exp $(ARGS)

test: $(STAMP) ## the test suite (no `slow` tests; ~10 min on 2 cores)
	$(PY) -m pytest -q $(ARGS)

test-full: $(STAMP) ## every test, `slow` ones included
	$(PY) -m pytest -q -m "" $(ARGS)

lint: $(STAMP) ## ruff lint + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP) ## ruff fix + format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP) ## benchmarks -> bench/results.json + a table
	$(PY) -m sr_lit.bench $(ARGS)

sweep: $(STAMP) ## a sweep/grid from conf_sweeps/: make sweep SWEEP=ablation_modules ARGS="seed=0"
	$(VENV)/bin/sr-train -m --config-dir conf_sweeps +sweep=$(SWEEP) $(ARGS)

gpu-check: $(STAMP) ## GPU checks in one call (bf16 vs fp32, channels_last, compile, HPF kernel) -> one table
	$(PY) -m sr_lit.bench.gpu_check $(ARGS)

clean: ## remove caches (keeps .venv and outputs/)
	rm -rf .pytest_cache .ruff_cache build *.egg-info
