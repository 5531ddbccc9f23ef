# `make setup` then `make test` set up and check ginv on a fresh machine.
VENV   := .venv
BIN    := $(VENV)/bin
# a prefix for the commands of the parts that `make test` runs beside the test suite
SIDE   ?=
PYTHON ?= python3

# The canonical data files live beside the project; use them when present.
ifneq ($(wildcard ../shared/data),)
export GINV_DATA_DIR ?= $(abspath ../shared/data)
endif

.PHONY: setup test pytest lint format bench docs wheel-check clean

setup:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt -r docs/requirements.txt
	$(BIN)/pip install -q --no-deps -e .

lint:
	$(SIDE) $(BIN)/ruff check src tests bench docs
	$(SIDE) $(BIN)/ruff format --check src tests bench docs
	$(SIDE) $(BIN)/mypy

# Lint, the docs and the wheel in a fresh venv beside the whole test suite: each of them is
# mostly one process, and the suite's 2 xdist workers leave room for them at their tails
# and while the SLURM tests wait on the scheduler. The suite is the longest part, so lint and
# the docs run at a lower priority (SIDE) and take the cores it leaves idle rather than its
# own; the wheel check does not: its steps one after the other take half the suite's time
# at full priority, and niced as well (measured) it outlasted the suite by 50 s.
# Each part's output is printed whole when it ends; any part failing fails `make test`.
test:
	$(MAKE) --no-print-directory -j 4 --output-sync=target SIDE="nice -n 10" lint docs wheel-check pytest

# The test suite on 2 xdist workers, each on its own share of the cores (tests/conftest.py);
# the SLURM tests, which share one local cluster, together on one of them; the 25 slowest
# tests are listed at the end, where the time goes.
pytest:
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=25

format:
	$(BIN)/ruff check --fix src tests bench docs
	$(BIN)/ruff format src tests bench docs

# The API documentation (docs/, mkdocs.yml) into build/site; any warning is an error.
docs:
	$(SIDE) $(BIN)/mkdocs build --strict --site-dir build/site

# Build the wheel and check it in a fresh venv: core install, then ginv[study].
wheel-check:
	scripts/check-wheel.sh $(PYTHON)

bench:
	$(BIN)/python bench/train_speed.py
	$(BIN)/python bench/saliency_speed.py

clean:
	rm -rf $(VENV) build site *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
