# The map of what a developer can do. `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CONFIG ?=

CONFIG_FLAG := $(if $(CONFIG),--config $(CONFIG),)

.DEFAULT_GOAL := help
.PHONY: help install run stop status test test-fast lint format bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# The CPU wheel of torch first (it lies on this machine's disk): with it installed, the
	@# project's `torch>=2.13,<2.14` is satisfied and pip never pulls a multi-GB CUDA build.
	$(PY) -m pip install --quiet 'torch==2.13.0'
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv (if missing) and install the project with dev tools

run: $(STAMP) ## start the whole stack in the background (CONFIG=file to choose a config)
	@bash scripts/start_stack.sh $(CONFIG_FLAG)

stop: ## stop exactly the processes the stack scripts started
	@bash scripts/stop_stack.sh $(CONFIG_FLAG)

status: $(STAMP) ## table of daemons: port, pid, health
	@bash scripts/status_stack.sh $(CONFIG_FLAG)

test: $(STAMP) ## run the whole test suite (what CI runs)
	$(PY) -m pytest

test-fast: $(STAMP) ## the suite without slow/fault/fuzz tests
	$(PY) -m pytest -m "not slow and not fault and not fuzz"

lint: $(STAMP) ## ruff (lint + format check) and mypy strict on the core
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP) ## run the benchmarks; figures go to reports/*.md
	$(PY) scripts/bench/run_all.py

clean: ## remove caches (not data/ and not .venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis
