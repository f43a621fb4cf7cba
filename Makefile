# The two commands a new user needs: `make demo` and `make test`. Each does its own set-up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
SCALE  ?= small

.PHONY: help install neo4j-install lint typecheck check test test-fast demo serve e2e chromium bench load-test clean

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install sitegraph with its dev tools

neo4j-install: install  ## download Neo4j Community 5.26 + Browser from Maven Central (once)
	$(BIN)/sitegraph neo4j install

lint: install  ## ruff lint and format check
	$(BIN)/ruff check sitegraph tests benchmarks
	$(BIN)/ruff format --check sitegraph tests benchmarks

typecheck: install  ## mypy
	$(BIN)/mypy

check: lint typecheck

test: install neo4j-install check  ## lint, type checks and the whole test suite, real Neo4j included
	$(BIN)/pytest -m "not slow and not e2e"

test-fast: install  ## tests on the embedded store only
	SITEGRAPH_TEST_STORES=memory $(BIN)/pytest -m "not slow and not e2e and not neo4j"

chromium:  ## Debian's headless Chromium for the browser test (no test tool downloads a browser)
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "install Debian's chromium package: sudo apt-get install chromium" >&2; exit 1; fi; }

e2e: install neo4j-install chromium  ## end-to-end test: Neo4j Browser in headless Chromium, screenshot in tests/artifacts/
	$(BIN)/pytest -m e2e

demo: install  ## load the bundled demo data into the embedded store and serve the API
	$(BIN)/sitegraph demo --serve

bench: install neo4j-install  ## benchmark suite at SCALE=small|medium|large; results in benchmarks/results/
	$(BIN)/python -m benchmarks.run --scale $(SCALE)

load-test: install neo4j-install  ## 60 s of 32 concurrent clients against the API on the demo data, each store
	$(BIN)/python -m benchmarks.load_test --store memory --prepare --duration 60
	$(BIN)/python -m benchmarks.load_test --store neo4j --start-neo4j --prepare --duration 60

clean:  ## remove the venv and local data (asks nothing: it is all regenerated)
	rm -rf $(VENV) .sitegraph .pytest_cache .mypy_cache .ruff_cache
