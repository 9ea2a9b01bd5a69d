# Two set-up commands on a fresh machine: `make demo` and `make test`.
# Everything below creates/uses the local venv and provisions the local backends itself.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: help doctor install provision lint typecheck schemas check-schemas test test-unit test-eager demo bench build clean browser screenshot

# `make help` prints every target that carries a "## description" on its rule line, in this order.
help: ## this list: every target with a line each
	@echo "The two set-up commands on a fresh machine: make demo, make test (make doctor checks the machine first)."
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z][a-zA-Z0-9_-]*:.*## / { printf "  make %-14s - %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

# `make doctor` runs deploy/local/doctor.py (standard library only: it runs before the venv exists).
doctor: ## check Java, the emulator jars, Python 3.13 and Chromium (and the project's Python); say how to fix each
	@command -v $(PYTHON) >/dev/null || { echo "  MISSING python: $(PYTHON) not found: install Python >= 3.11 or run make PYTHON=/path/to/python3.x doctor"; exit 1; }
	@$(PYTHON) -m deploy.local.doctor

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev tools (once per pyproject.toml change)

provision: install ## check Java and the emulator jars, install local-bigquery (Python 3.13) under .cache/localcloud
	$(BIN)/python -m deploy.local.emulators provision

lint: install ## ruff
	$(BIN)/ruff check .

typecheck: install ## mypy (strict) on shared, functions, deploy
	$(BIN)/mypy

schemas: install ## re-export the message JSON Schemas to docs/contracts
	$(BIN)/python -m shared.contracts.schemas --write docs/contracts

check-schemas: install ## fail when docs/contracts drifts from the message models
	$(BIN)/python -m shared.contracts.schemas --check docs/contracts

test-unit: install ## the unit tests only (no emulators)
	$(BIN)/pytest -m "not integration"

# The eager switch loads every lazy entry at import: a broken lazy map fails here. The lazy-core
# tests (every entry resolves, parity, thread safety) and the pure core run with it; running the
# whole unit suite eagerly again added ~2 min to CI and caught nothing they do not.
test-eager: install ## the lazy-core tests and the pure core with every lazy entry imported (SHARED_EAGER=1)
	SHARED_EAGER=1 $(BIN)/pytest -m "not integration" -q -p no:cacheprovider \
	  tests/shared/test_lazy.py tests/shared/contracts tests/shared/pipeline tests/shared/orchestration/test_engine.py

# The suite on two workers (pytest-xdist), one test file per worker at a time: each worker starts
# its own emulators; the emulator tests mostly wait on I/O, so two workers on two cores pay off.
test: provision browser lint typecheck check-schemas test-eager ## ruff, mypy, contract drift check, the eager-import run, then the whole suite (unit + integration)
	$(BIN)/pytest -n 2 --dist loadfile --durations=15

# Headless Chromium (Debian package `chromium`) for the status page's browser test.
# It never calls sudo: as root (CI, this machine kind) it installs the package; otherwise it says the command.
browser: ## install Debian's chromium when it is missing (the status page's browser test); as root only, never sudo
	@command -v chromium >/dev/null || [ -n "$$PHASECHAIN_SKIP_BROWSER" ] || { \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "chromium is missing: run 'sudo apt-get install chromium' (make does not call sudo), or set PHASECHAIN_SKIP_BROWSER=1"; exit 1; \
	  fi; \
	  apt-get update -qq && env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# The status page of a seeded, real-looking night (tests/support/seeded_night.py) rendered by the real page
# code and photographed by headless Chromium: the picture in docs/operations.md (The status page).
screenshot: install browser ## regenerate docs/img/status-page.png (the status page of a seeded night, headless Chromium)
	$(BIN)/python -m tests.support.seeded_night build/status-page.html --png docs/img/status-page.png

# One bundle per function from its import closure: build/<function>/ and build/<function>.zip
build: install ## one bundle per function: build/<function>/ and build/<function>.zip
	$(BIN)/python -m deploy build

demo: provision ## the night of 2026-01-24 replayed on the local cloud, every function from its bundle, then the morning's scheduled jobs (~5 min)
	$(BIN)/python -m deploy.local.demo

bench: provision ## benchmarks (results in docs/benchmarks.md)
	$(BIN)/python -m tests.bench.run
	$(BIN)/python -m tests.bench.bundles
	$(BIN)/python -m tests.bench.demo
	$(BIN)/python -m tests.bench.contention
	$(BIN)/python -m tests.bench.burst
	$(BIN)/python -m tests.bench.cost
	$(BIN)/python -m tests.bench.schedules

clean: ## remove .venv, .cache, build and the tool caches
	rm -rf $(VENV) .cache build .pytest_cache .mypy_cache .ruff_cache
