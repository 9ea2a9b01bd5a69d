# Two set-up commands on a fresh machine: `make demo` and `make test`.
# Everything below creates/uses the local venv and provisions the local backends itself.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: help install provision lint typecheck schemas check-schemas test test-unit test-eager demo bench build clean browser

help:
	@echo "make demo   - run a night on the local emulator stack"
	@echo "make test   - lint, type-check, contract drift check, the whole suite (unit + integration)"
	@echo "make bench  - benchmarks (results in docs/benchmarks.md)"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

provision: install
	$(BIN)/python -m shared.localcloud.emulators provision

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

schemas: install
	$(BIN)/python -m shared.contracts.schemas --write docs/contracts

check-schemas: install
	$(BIN)/python -m shared.contracts.schemas --check docs/contracts

test-unit: install
	$(BIN)/pytest -m "not integration"

# The eager switch loads every lazy entry at import: a broken lazy map fails here. The lazy-core
# tests (every entry resolves, parity, thread safety) and the pure core run with it; running the
# whole unit suite eagerly again added ~2 min to CI and caught nothing they do not.
test-eager: install
	SHARED_EAGER=1 $(BIN)/pytest -m "not integration" -q -p no:cacheprovider \
	  tests/shared/test_lazy.py tests/shared/contracts tests/shared/pipeline tests/shared/orchestration/test_engine.py

test: provision browser lint typecheck check-schemas test-eager
	$(BIN)/pytest --durations=15

# Headless Chromium (Debian package `chromium`) for the status page's browser test.
browser:
	@command -v chromium >/dev/null || { \
	  SUDO=; if [ "$$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# One bundle per function from its import closure: build/<function>/ and build/<function>.zip
build: install
	$(BIN)/python -m deploy build

demo: provision
	$(BIN)/python -m shared.localcloud.demo

bench: provision
	$(BIN)/python -m tests.bench.run
	$(BIN)/python -m tests.bench.bundles
	$(BIN)/python -m tests.bench.demo

clean:
	rm -rf $(VENV) .cache build .pytest_cache .mypy_cache .ruff_cache
