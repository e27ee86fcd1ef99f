# circlecost — run `make` for this list.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# pytest-xdist workers for `make test` (auto: one per CPU; JOBS=0 runs in this one process).
JOBS ?= auto
XDIST = $(if $(filter 0,$(JOBS)),,-n $(JOBS) --dist worksteal)

# Seconds the concurrent-runner soak (tests/faults/test_shared_store_soak.py) runs: half a
# minute in `make test`, minutes in `make check` (what CI runs) and in `make soak`.
SOAK_SECONDS ?= 30
CHECK_SOAK_SECONDS ?= 120
LONG_SOAK_SECONDS ?= 180
export SHARED_STORE_SOAK_SECONDS = $(SOAK_SECONDS)

.PHONY: help bootstrap demo demo-clean test test-random check lint typecheck bench soak

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

bootstrap: ## install .venv and a Pulumi CLI (builds one into ~/.cache/circlecost when none is on PATH)
	@bash .ci/bootstrap.sh

demo: bootstrap ## the main job: pulumi up against the bundled CircleCI emulator, then a cost report
	@$(PY) -m circlecost.demo run

demo-clean: ## remove the demo's Pulumi state, store and reports (.demo/)
	@rm -rf .demo && echo "removed .demo/"

test: bootstrap ## the whole test suite, including end-to-end tests through the real Pulumi CLI
	@$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

test-random: bootstrap ## the whole suite in a random order (SEED=n repeats an order)
	@$(PY) -m pytest $(XDIST) --random-order-bucket=global $(if $(SEED),--random-order-seed=$(SEED)) $(PYTEST_ARGS)

lint: bootstrap ## ruff lint and format check
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

typecheck: bootstrap ## mypy (strict for provider/, policies/ and emulator/, relaxed for tests/ and bench/)
	@links=$$(bash .ci/mypy-path.sh) && MYPYPATH=$$links:emulator \
	  $(VENV)/bin/mypy $$links/circlecost emulator/circlecost_emulator tests bench __main__.py

check: SOAK_SECONDS = $(CHECK_SOAK_SECONDS)
check: lint typecheck test ## ruff, mypy and the tests, the soak for 2 minutes (what CI runs)

soak: SOAK_SECONDS = $(LONG_SOAK_SECONDS)
soak: bootstrap ## the shared store's concurrent-runner soak alone, 3 minutes (LONG_SOAK_SECONDS=n)
	@$(PY) -m pytest -p no:randomly tests/faults/test_shared_store_soak.py $(PYTEST_ARGS)

bench: bootstrap ## benchmarks: import speed and memory, report speed, each against a baseline
	@$(PY) -m bench.import_bench
