# Two set-up commands on a fresh machine: `make demo` and `make test`.
# Everything below creates/uses the local venv and provisions the local backends itself.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: help doctor install provision lint typecheck schemas check-schemas test test-unit test-eager demo bench build clean browser

# `make help` prints every target that carries a "## description" on its rule line, in this order.
help: ## this list: every target with a line each
	@echo "The two set-up commands on a fresh machine: make demo, make test (make doctor checks the machine first)."
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z][a-zA-Z0-9_-]*:.*## / { printf "  make %-14s - %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

# `make doctor`: what `make demo` and `make test` need on this machine, each OK or how to fix it. It finds
# the emulator jars and Python 3.13 exactly as `make provision` does (deploy/local/emulators.py,
# standard library only, so it runs before the venv exists). Exit 1 when a required check fails;
# Chromium is a warning, since `make test` installs it itself (`make browser`).
define DOCTOR_PY_SCRIPT
import os, re, shutil, subprocess, sys

sys.path.insert(0, os.getcwd())
failed = []

def report(status, what, text):
    print(f"  {status:<7} {what:<24} {text}")
    if status == "MISSING":
        failed.append(what)

def first_line(argv):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    lines = [l for l in (out.stdout + "\n" + out.stderr).splitlines() if l.strip() and not l.startswith("/")]
    return out.returncode, (lines[0].strip() if lines else "")

print("make doctor: what make demo and make test need on this machine")
found = ".".join(map(str, sys.version_info[:3]))
if sys.version_info >= (3, 11):
    report("OK", "python (the project)", f"Python {found} ({sys.executable}): the project needs >= 3.11")
else:
    report("MISSING", "python (the project)", f"Python {found} ({sys.executable}) is older than 3.11: install Python >= 3.11 and run make PYTHON=/path/to/python3.x ...")

try:
    from deploy.local import emulators
except Exception as exc:
    emulators = None
    report("MISSING", "deploy.local", f"cannot import deploy.local.emulators ({type(exc).__name__}: {exc}): run make doctor from the repository root")

java = shutil.which("java")
if java is None:
    report("MISSING", "java", "not on PATH: the Pub/Sub and Firestore emulators need a Java 11+ runtime: apt-get install default-jre-headless")
else:
    code, line = first_line([java, "-version"])
    if code == 0:
        report("OK", "java", f"{line} ({java})")
    else:
        report("MISSING", "java", f"{java} -version failed ({line}): apt-get install default-jre-headless")

if emulators is not None:
    for what, find in (("pubsub emulator jar", emulators.pubsub_jar), ("firestore emulator jar", emulators.firestore_jar)):
        try:
            report("OK", what, str(find()))
        except Exception as exc:
            report("MISSING", what, str(exc))
    try:
        python313 = emulators.find_python313()
        code, line = first_line([python313, "--version"])
        report("OK", "python 3.13", f"{line} ({python313}): local-bigquery {emulators.LOCAL_BIGQUERY_VERSION} runs on it")
    except Exception as exc:
        report("MISSING", "python 3.13", str(exc))
    root = emulators.default_cache_dir() / f"local-bigquery-{emulators.LOCAL_BIGQUERY_VERSION}"
    if (root / ".provisioned").is_file():
        report("OK", "local-bigquery", f"provisioned in {root}")
    else:
        report("INFO", "local-bigquery", f"not provisioned yet: make provision (run by make demo and make test) installs it in {root}")

chromium = shutil.which("chromium")
if chromium is None:
    report("WARN", "chromium", "not found: make browser installs Debian's chromium (apt-get install chromium); make test runs it itself")
else:
    code, line = first_line([chromium, "--version"])
    report("OK" if code == 0 else "WARN", "chromium", f"{line} ({chromium})" if code == 0 else f"{chromium} --version failed: make browser")

if failed:
    print(f"make doctor: {len(failed)} required check(s) failed: " + ", ".join(failed))
    sys.exit(1)
print("make doctor: all required checks passed")
endef

doctor: export DOCTOR_PY = $(DOCTOR_PY_SCRIPT)
doctor: ## check Java, the emulator jars, Python 3.13 and Chromium (and the project's Python); say how to fix each
	@command -v $(PYTHON) >/dev/null || { echo "  MISSING python: $(PYTHON) not found: install Python >= 3.11 or run make PYTHON=/path/to/python3.x doctor"; exit 1; }
	@$(PYTHON) -c "$$DOCTOR_PY"

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
browser: ## install Debian's chromium when it is missing (the status page's browser test)
	@command -v chromium >/dev/null || { \
	  SUDO=; if [ "$$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# One bundle per function from its import closure: build/<function>/ and build/<function>.zip
build: install ## one bundle per function: build/<function>/ and build/<function>.zip
	$(BIN)/python -m deploy build

demo: provision ## the night of 2026-01-24 replayed on the local cloud, every function from its bundle (~2 min)
	$(BIN)/python -m deploy.local.demo

bench: provision ## benchmarks (results in docs/benchmarks.md)
	$(BIN)/python -m tests.bench.run
	$(BIN)/python -m tests.bench.bundles
	$(BIN)/python -m tests.bench.demo

clean: ## remove .venv, .cache, build and the tool caches
	rm -rf $(VENV) .cache build .pytest_cache .mypy_cache .ruff_cache
