# The commands developers and CI share. `make run` and `make test` are the
# README's Quickstart; both create .venv and install into it when needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint unit bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Conveyor needs Python >= 3.11: run make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

## Install, queue a run of the example ETL job, then start the scheduler on the examples
## (until Ctrl-C), which runs it and the report chained on it. Runs are recorded in
## CONVEYOR_HOME (default ~/.conveyor).
run: $(STAMP)
	$(BIN)/conveyor trigger examples/pipelines.py etl
	$(BIN)/conveyor daemon examples/pipelines.py

## Install, then check style and types and run the whole test suite.
test: lint unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# pytest exits 5 when it collected no tests: a failure here, not a pass.
unit: $(STAMP)
	$(BIN)/pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

## The in-process benchmarks of BENCHMARKS.md (a few minutes).
bench: $(STAMP)
	$(BIN)/python benchmarks/inprocess.py
	$(BIN)/python benchmarks/startup.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
