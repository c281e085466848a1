# Two commands do all set-up on a fresh machine: `make run` and `make test`.
UV_VERSION := 0.13.9
UV := .tools/uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup services run test test-unit lint contracts devnet clean bench

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

# The benchmark of issue 8 (never part of `make test`): a table, and JSON in bench/results/.
# ARGS="--quick" for a smoke run; ARGS="--only raw,reads" for some scenarios; see bench/run.py.
bench: setup services
	$(BIN)/python -m bench $(ARGS)

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
