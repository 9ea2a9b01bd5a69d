"""The lazy ``shared`` core (PEP 562): parity, thread safety, errors, eager switch, import probe."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "data" / "fixture_packages"
LAZY_PACKAGES = ["shared", "shared.pipeline", "shared.contracts", "deploy.local"]
HEAVY_MODULES = ["google.cloud.bigquery", "pandas"]


def _lazy_env() -> dict[str, str]:
    """The environment without the eager switch (CI also runs this suite with SHARED_EAGER=1)."""
    return {k: v for k, v in os.environ.items() if k != "SHARED_EAGER"}


def _run(code: str, **env: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**_lazy_env(), "PYTHONPATH": f"{REPO}{os.pathsep}{FIXTURES}", **env},
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture
def lazyfix(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The fixture package, imported lazily (its map holds a deliberately wrong entry: eager loading would fail)."""
    monkeypatch.delenv("SHARED_EAGER", raising=False)
    sys.path.insert(0, str(FIXTURES))
    for name in [m for m in sys.modules if m == "lazyfix" or m.startswith("lazyfix.")]:
        del sys.modules[name]
    try:
        yield importlib.import_module("lazyfix")
    finally:
        sys.path.remove(str(FIXTURES))
        for name in [m for m in sys.modules if m == "lazyfix" or m.startswith("lazyfix.")]:
            del sys.modules[name]


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_all_and_dir_match_the_declared_map(package: str) -> None:
    module = importlib.import_module(package)
    declared = sorted(module._LAZY)
    assert module.__all__ == declared
    assert sorted(dir(module)) == declared


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_declared_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    for name in module._LAZY:
        assert getattr(module, name) is not None, f"{package}.{name}"


def test_unknown_name_is_an_attribute_error(lazyfix: ModuleType) -> None:
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        lazyfix.nope  # noqa: B018


def test_submodule_entry_exports_the_module(lazyfix: ModuleType) -> None:
    assert isinstance(lazyfix.light, ModuleType)
    assert lazyfix.LIGHT_VALUE is lazyfix.light.LIGHT_VALUE


def test_wrong_map_entry_says_which_module_lacks_the_name(lazyfix: ModuleType) -> None:
    with pytest.raises(ImportError, match=r"'lazyfix\.light', but that module has no such attribute"):
        lazyfix.Missing  # noqa: B018


def test_missing_optional_package_names_the_pip_package(lazyfix: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google.cloud.bigquery", None)  # type: ignore[arg-type]
    with pytest.raises(ImportError, match=r"lazyfix.Heavy needs the optional package 'google-cloud-bigquery'"):
        lazyfix.Heavy  # noqa: B018


def test_first_access_from_many_threads_resolves_one_object(lazyfix: ModuleType) -> None:
    """gen2 Cloud Functions serve concurrent requests: first access races must be safe."""
    barrier = threading.Barrier(16)
    seen: list[object] = []
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            seen.append(lazyfix.LIGHT_VALUE)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(seen) == 16 and len({id(v) for v in seen}) == 1


def test_importing_shared_loads_no_submodule_and_no_heavy_package() -> None:
    result = _run(
        "import json, sys; import shared, shared.pipeline, shared.contracts, deploy.local; "
        "print(json.dumps({'loaded': sorted(m for m in sys.modules if m.startswith(('shared.', 'deploy.'))), "
        f"'heavy': [m for m in {HEAVY_MODULES!r} if m in sys.modules]}}))"
    )
    assert result["heavy"] == []
    assert result["loaded"] == ["deploy.local", "shared._lazy", "shared.contracts", "shared.pipeline"]


def test_using_the_definition_does_not_load_bigquery() -> None:
    result = _run(
        "import json, sys, shared; d = shared.load_definition(); "
        f"print(json.dumps({{'heavy': [m for m in {HEAVY_MODULES!r} if m in sys.modules]}}))"
    )
    assert result == {"heavy": []}


def test_eager_switch_imports_every_entry() -> None:
    code = (
        "import json, sys, shared, shared.pipeline, shared.contracts, deploy.local; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('shared.', 'deploy.')))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "SHARED_EAGER": "1"},
        check=True,
        timeout=120,
    )
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    for package in LAZY_PACKAGES:
        module = importlib.import_module(package)
        for target in set(module._LAZY.values()):
            assert importlib.util.resolve_name(target, package) in loaded


@pytest.mark.parametrize(
    "function", ["phase2_to_phase3", "phase3_to_phase4", "phase4_to_phase5", "phase5_to_phase6"]
)
def test_l16_transition_entrypoint_leaves_bigquery_and_pandas_unloaded(function: str) -> None:
    """The seed's eager shared/utils pulled pandas into every function (L16)."""
    main = REPO / "functions" / function / "main.py"
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('main', {str(main)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "after_import = [m for m in %r if m in sys.modules]\n"
        "from shared.orchestration.runtime import build_service\n"
        "build_service(module.TRANSITION)\n"
        "after_build = [m for m in %r if m in sys.modules]\n"
        "print(json.dumps({'import': after_import, 'build': after_build}))\n"
    ) % (HEAVY_MODULES, HEAVY_MODULES)
    result = _run(code, GOOGLE_CLOUD_PROJECT="probe-project", FIRESTORE_EMULATOR_HOST="127.0.0.1:9",
                  PUBSUB_EMULATOR_HOST="127.0.0.1:9")
    assert result == {"import": [], "build": []}
