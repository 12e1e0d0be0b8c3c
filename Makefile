# The map of what a developer can do. `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CONFIG ?=
# Demo roster size that `make run` generates, ingests and indexes.
WORKERS ?= 20000

CONFIG_FLAG := $(if $(CONFIG),--config $(CONFIG),)

.DEFAULT_GOAL := help
.PHONY: help install run demo stop status test test-fast fuzz lint format bench smoke parity clean

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

run: $(STAMP) ## start the stack, then load and index the demo roster (WORKERS=20000, CONFIG=file)
	@bash scripts/start_stack.sh $(CONFIG_FLAG)
	@$(BIN)/lakehouse demo load --workers $(WORKERS) $(CONFIG_FLAG)

demo: $(STAMP) ## tell the learning story through the gateway of a running stack (after make run)
	@bash scripts/demo.sh $(CONFIG_FLAG)

smoke: $(STAMP) ## smoke every daemon, then the end-to-end story, against a running stack
	@bash scripts/smoke/run_all.sh $(CONFIG_FLAG)

parity: $(STAMP) ## the parity probes against a running stack (PEER_URL=, ECHO_MODEL= optional)
	@bash scripts/parity/run_all.sh $(CONFIG_FLAG)

stop: ## stop exactly the processes the stack scripts started
	@bash scripts/stop_stack.sh $(CONFIG_FLAG)

status: $(STAMP) ## table of daemons: port, pid, health
	@bash scripts/status_stack.sh $(CONFIG_FLAG)

# Two workers: most tests wait on real daemons, not the CPU. A test module stays on one worker,
# and so does a daemon package whose conftest starts a package-scoped stack (--dist loadgroup;
# the groups are set in tests/conftest.py), so each stack starts once. TEST_WORKERS=0 runs
# serially.
TEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup)

test: $(STAMP) ## run the whole test suite (what CI runs; TEST_WORKERS=2)
	$(PY) -m pytest $(XDIST)

test-fast: $(STAMP) ## the suite without slow/fault/fuzz tests
	$(PY) -m pytest $(XDIST) -m "not slow and not fault and not fuzz"

# `make test` (CI) fuzzes with 10 examples per operation and a fixed seed; this is the long run.
FUZZ_EXAMPLES ?= 100
FUZZ_SEED ?= random
fuzz: $(STAMP) ## schemathesis on every daemon's API, big budget (FUZZ_EXAMPLES=100, FUZZ_SEED=random)
	LAKEHOUSE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) LAKEHOUSE_FUZZ_SEED=$(FUZZ_SEED) \
	LAKEHOUSE_FUZZ_PHASES=examples,coverage,fuzzing,stateful \
	$(PY) -m pytest tests/fuzz -m fuzz -p no:cacheprovider -v

lint: $(STAMP) ## ruff (lint + format check) and mypy strict on the core and the daemons
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
