# The whole set-up: a fresh machine needs only python3 (>= 3.11) and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test

.PHONY: demo test lint bench notebook explore clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# The tests include data-parallel training under `mpiexec -n 2` (the `mpi` extra).
$(TSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,mpi]'
	touch $@ $(STAMP)

# Trains the default recipe on the bundled digits set (no download) and prints the test
# accuracy and the results directory (runs/<timestamp>/: model, metrics, plots).
demo: $(STAMP)
	$(BIN)/backprop train --data digits

lint: $(TSTAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
# The layer contracts (pyproject.toml). No cache: it would sit unignored in the repository
# root, and the import graph takes a fraction of a second to build.
	$(BIN)/lint-imports --no-logo --no-cache

test: lint
	$(BIN)/python -m pytest -n 2

# The benchmark's peers (the `bench` extra: PyTorch, JAX, optax) on top of the tests' set.
BSTAMP := $(VENV)/.installed-bench
$(BSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,mpi,bench]'
	touch $@ $(TSTAMP) $(STAMP)

bench: $(BSTAMP)
	$(BIN)/python benchmarks/bench.py

# JupyterLab (the `notebook` extra) is installed once, then the notebook opens in the venv's
# kernel. To regenerate the stored outputs: $(BIN)/python notebooks/build_notebook.py
NSTAMP := $(VENV)/.installed-notebook
$(NSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,mpi,notebook]'
	touch $@ $(TSTAMP) $(STAMP)

notebook: $(NSTAMP)
	$(BIN)/jupyter lab notebooks/backprop.ipynb

# The explorer: a local web app on 127.0.0.1 (docs/explore.md); Ctrl-C stops it.
explore: $(STAMP)
	$(BIN)/backprop explore

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
