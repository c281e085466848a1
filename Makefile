# Two commands do all set-up on a fresh machine: `make run` and `make test`.
UV_VERSION := 0.13.9
UV := .tools/uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup services run test test-unit soak reliability lint contracts devnet clean

setup: $(VENV)/.synced node_modules/.installed

$(UV):
	python3 -m venv .tools/uv
	.tools/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --python python3
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

services:
	scripts/services.sh

run: setup
	$(BIN)/islands up

test: setup services
	$(BIN)/pytest

test-unit: setup
	$(BIN)/pytest tests/unit

# Several minutes of transfers under random faults (ISLANDS_SOAK_MINUTES, ISLANDS_SOAK_SEED).
soak: setup services
	ISLANDS_FAULT_FIGURES=1 $(BIN)/pytest tests/faults -m soak -s

# The fault tests, then their figures into docs/reliability.md.
reliability: setup services
	rm -rf results/faults
	ISLANDS_FAULT_FIGURES=1 $(BIN)/pytest tests/faults
	$(BIN)/python scripts/reliability_table.py --doc docs/reliability.md

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

contracts: node_modules/.installed
	node adapters/evm/build.mjs

devnet: setup
	$(BIN)/islands devnet up

clean:
	rm -rf .state .pytest_cache .mypy_cache .ruff_cache
