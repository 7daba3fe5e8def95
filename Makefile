# The commands developers and CI share. `make run` and `make test` are the
# README's Quickstart; both create .venv and install into it when needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# `make run PORT=8080` serves elsewhere (PORT=0: any free port).
PORT ?= 3000

.PHONY: run test chromium lint unit bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Conveyor needs Python >= 3.11: run make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

## Install, then start `conveyor dev` on the examples until Ctrl-C: the web UI and the
## API at http://127.0.0.1:$(PORT), and the scheduler. Runs are recorded in ./.conveyor
## (or CONVEYOR_HOME); a change of a file of examples/ is loaded at once.
run: $(STAMP)
	$(BIN)/conveyor dev examples --port $(PORT)

## Install, then check style and types and run the whole test suite.
test: chromium lint unit

## The browser tests drive Debian's Chromium: install it when it is missing (as root).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
	    || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }; \
	  else \
	    echo "the browser tests need /usr/bin/chromium, and only root can install it: run" \
	      "'sudo apt-get install -y chromium' (Debian or Ubuntu), then make test again" >&2; \
	    exit 1; \
	  fi; \
	fi

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
