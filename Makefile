# circlecost — run `make` for this list.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: help bootstrap demo demo-clean test test-random check lint typecheck bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

bootstrap: ## install .venv and a Pulumi CLI (builds one into ~/.cache/circlecost when none is on PATH)
	@bash .ci/bootstrap.sh

demo: bootstrap ## the main job: pulumi up against the bundled CircleCI emulator, then a cost report
	@$(PY) -m provider.demo run

demo-clean: ## remove the demo's Pulumi state, store and reports (.demo/)
	@rm -rf .demo && echo "removed .demo/"

test: bootstrap ## the whole test suite, including end-to-end tests through the real Pulumi CLI
	@$(PY) -m pytest $(PYTEST_ARGS)

test-random: bootstrap ## the whole suite in a random order (SEED=n repeats an order)
	@$(PY) -m pytest --random-order-bucket=global $(if $(SEED),--random-order-seed=$(SEED)) $(PYTEST_ARGS)

lint: bootstrap ## ruff lint and format check
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

typecheck: bootstrap ## mypy (strict for provider/ and policies/, relaxed for tests/)
	@$(VENV)/bin/mypy

check: lint typecheck test ## ruff, mypy and the tests (what CI runs)

bench: bootstrap ## benchmarks: import speed and memory, report speed, each against a baseline
	@$(PY) -m tests.bench
