# Two commands do all set-up on a fresh machine: `make run` and `make test`.
UV_VERSION := 0.13.9
UV := .tools/uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin
# go-ethereum for the tests' `geth --dev` island: built once from the Go module proxy (about 9
# minutes on a clean machine of 2 cores), kept in .tools/.
# Keep GETH_VERSION equal to adapters/evm/nodes.py's.
GETH_VERSION := v1.17.10
GETH := .tools/geth-$(GETH_VERSION)/bin/geth

.PHONY: setup services browser run test test-unit soak reliability bench lint contracts web devnet clean

setup: $(VENV)/.synced node_modules/.installed $(GETH)

$(UV):
	python3 -m venv .tools/uv
	.tools/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --python python3
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# With a Go build cache of its own, removed after: geth is built once, and the cache is 700 MB.
$(GETH):
	@command -v go >/dev/null || { echo "make setup needs Go (1.24+) to build geth $(GETH_VERSION)"; exit 1; }
	GOCACHE=$(abspath .tools/go-build) GOBIN=$(abspath $(dir $(GETH))) GOFLAGS=-buildvcs=false \
		go install github.com/ethereum/go-ethereum/cmd/geth@$(GETH_VERSION)
	rm -rf .tools/go-build

services:
	scripts/services.sh

browser:
	scripts/browser.sh

run: setup
	$(BIN)/islands up

# Two workers: most tests wait on chains and processes, and a package that shares a stack
# stays on one worker (tests/conftest.py's scheduler), so its stack starts once.
test: setup services browser
	$(BIN)/pytest -n 2

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

# The dashboard: web/ (TypeScript, Vite from npm) built into hub/web, which is committed and
# served by the API; a test fails when it is stale.
web: node_modules/.installed
	npm run --silent web

devnet: setup
	$(BIN)/islands devnet up

clean:
	rm -rf .state .pytest_cache .mypy_cache .ruff_cache
