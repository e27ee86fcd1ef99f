# circlecost — run `make` for this list.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# pytest-xdist workers for `make test` (auto: one per CPU; JOBS=0 runs in this one process).
JOBS ?= auto
XDIST = $(if $(filter 0,$(JOBS)),,-n $(JOBS) --dist worksteal)

.PHONY: help bootstrap demo demo-clean test test-random check lint typecheck bench

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

check: lint typecheck test ## ruff, mypy and the tests (what CI runs)

bench: bootstrap ## benchmarks: import speed and memory, report speed, each against a baseline
	@$(PY) -m bench.import_bench
