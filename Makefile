# `make setup` then `make test` set up and check ginv on a fresh machine.
VENV   := .venv
BIN    := $(VENV)/bin
PYTHON ?= python3

# The canonical data files live beside the project; use them when present.
ifneq ($(wildcard ../shared/data),)
export GINV_DATA_DIR ?= $(abspath ../shared/data)
endif

.PHONY: setup test lint format bench docs wheel-check clean

setup:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt -r docs/requirements.txt
	$(BIN)/pip install -q --no-deps -e .

lint:
	$(BIN)/ruff check src tests bench docs
	$(BIN)/ruff format --check src tests bench docs
	$(BIN)/mypy

# Lint, the docs, the wheel in a fresh venv, then the whole test suite on 2 xdist workers
# (the SLURM tests, which share one local cluster, together on one of them); the 25 slowest
# tests are listed at the end, where the time goes.
test: lint docs wheel-check
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=25

format:
	$(BIN)/ruff check --fix src tests bench docs
	$(BIN)/ruff format src tests bench docs

# The API documentation (docs/, mkdocs.yml) into build/site; any warning is an error.
docs:
	$(BIN)/mkdocs build --strict --site-dir build/site

# Build the wheel and check it in a fresh venv: core install, then ginv[study].
wheel-check:
	scripts/check-wheel.sh $(PYTHON)

bench:
	$(BIN)/python bench/train_speed.py
	$(BIN)/python bench/saliency_speed.py

clean:
	rm -rf $(VENV) build site *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
