"""The bundler on real fixture trees (tests/fixtures/bundle_trees) and on the repo's own functions.

Fast: no emulators, no venvs. A built fixture bundle is also *run* (``import main;
main.handle()`` from the bundle directory, in a fresh interpreter) to show the closure
is complete: a module the analysis missed fails there, whatever the manifest says.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from deploy.bundle import (
    DISTRIBUTION_OVERRIDES,
    Analyzer,
    BuildError,
    build_function,
    distribution_for,
    explain,
    functions,
    manifest,
    requirements,
)
from shared.clock import SystemClock
from shared.contracts.messages import ProcessorCompletion
from shared.orchestration.engine import CompletionRecord, Wait, decide
from shared.pipeline import load_definition
from tests.bench.bundles import past_game_date, replace_section, sample_completion

REPO = Path(__file__).resolve().parents[2]
TREES = REPO / "tests" / "fixtures" / "bundle_trees"


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def analyzer(tree: str | Path) -> Analyzer:
    root = tree if isinstance(tree, Path) else TREES / tree
    return Analyzer(root=root, functions_dir=root / "functions")


def modules(tree: str | Path, function: str) -> set[str]:
    return set(analyzer(tree).analyze(function).modules)


def chain_of(tree: str | Path, function: str, module: str) -> str:
    return analyzer(tree).analyze(function).modules[module][1].render()


def build(tree: str | Path, function: str, out: Path) -> Path:
    """Build the bundle; returns its directory."""
    build_function(function, out, analyzer(tree))
    return out / function


def bundle_files(bundle: Path) -> set[str]:
    return {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}


RUNNER = """
import json, sys
import main
result = main.handle()
bundle = sys.argv[1]
foreign = sorted(
    name for name, m in list(sys.modules.items())
    if (getattr(m, "__file__", None) or "").startswith(sys.argv[2]) and not m.__file__.startswith(bundle)
)
print(json.dumps({"result": result, "foreign": foreign}))
"""


def run_bundle(bundle: Path) -> str:
    """``import main; main.handle()`` in a fresh interpreter from the bundle directory only."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH", "SHARED_EAGER")}
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(bundle.resolve()), str(TREES)],
        cwd=bundle,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["foreign"] == [], f"modules loaded from outside the bundle: {out['foreign']}"
    return str(out["result"])


# --------------------------------------------------------------------------------------
# closure: what goes in, what stays out
# --------------------------------------------------------------------------------------
def test_a_new_shared_module_lands_only_in_the_bundle_that_imports_it(tmp_path: Path) -> None:
    assert modules("new_module", "alpha") == {"shared", "shared.common", "shared.alpha_only"}
    assert modules("new_module", "beta") == {"shared", "shared.common"}
    assert chain_of("new_module", "alpha", "shared.alpha_only") == "main → shared.alpha_only"

    alpha = build("new_module", "alpha", tmp_path)
    beta = build("new_module", "beta", tmp_path)
    assert bundle_files(alpha) == {
        "main.py",
        "requirements.txt",
        "manifest.json",
        "shared/__init__.py",
        "shared/common.py",
        "shared/alpha_only.py",
    }
    assert "shared/alpha_only.py" not in bundle_files(beta)
    assert not any("unused" in f for f in bundle_files(alpha) | bundle_files(beta))
    assert run_bundle(alpha) == "HELLO ALPHA"
    assert run_bundle(beta) == "hello beta"


def test_transitive_chain_a_b_c(tmp_path: Path) -> None:
    assert modules("chain", "fn") == {"shared", "shared.a", "shared.b", "shared.c"}
    assert chain_of("chain", "fn", "shared.c") == "main → shared.a → shared.b → shared.c"
    assert explain("fn", "shared.c", analyzer("chain")) == "shared.c: main → shared.a → shared.b → shared.c"
    assert explain("fn", "shared.d", analyzer("chain")) == "shared.d is not in the fn bundle"
    assert run_bundle(build("chain", "fn", tmp_path)) == "abc"


def test_lazy_names_pull_only_the_defining_module(tmp_path: Path) -> None:
    assert modules("lazy_names", "by_name") == {"shared", "shared.widgets", "shared.gadgets", "shared.gadgets.gear"}
    closure = analyzer("lazy_names").analyze("by_name")
    gear_chain = closure.modules["shared.gadgets.gear"][1].render()
    assert gear_chain == "main → shared.gadgets.Gear (lazy) → shared.gadgets.gear"
    assert run_bundle(build("lazy_names", "by_name", tmp_path)) == "widget+gear"


def test_lazy_names_reached_by_attribute_access_on_packages(tmp_path: Path) -> None:
    # `import shared.gadgets; shared.gadgets.Spring` and `from shared import gadgets; gadgets.build_gadget()`
    assert modules("lazy_names", "by_attribute") == {
        "shared",
        "shared.tools",
        "shared.gadgets",
        "shared.gadgets.spring",
        "shared.gadgets.factory",
    }
    assert run_bundle(build("lazy_names", "by_attribute", tmp_path)) == "spring+gadget+wrench"


def test_relative_imports(tmp_path: Path) -> None:
    assert modules("relative", "fn") == {
        "shared",
        "shared.pkg",
        "shared.pkg.z",  # from ..z import zed
        "shared.pkg.sub",
        "shared.pkg.sub.w",  # from .w import W (in the package __init__)
        "shared.pkg.sub.x",  # from . import x
        "shared.pkg.sub.y",  # from .y import thing
        "shared.pkg.sub.mod",
    }
    assert run_bundle(build("relative", "fn", tmp_path)) == "xyzw"


def test_import_module_with_literal_strings(tmp_path: Path) -> None:
    assert modules("dynamic", "fn") == {"shared", "shared.dyn", "shared.dyn_rel", "shared.dyn_sibling"}
    assert chain_of("dynamic", "fn", "shared.dyn_sibling") == "main → shared.dyn → shared.dyn_sibling"
    assert run_bundle(build("dynamic", "fn", tmp_path)) == "dyn+rel+sibling"


def test_imports_guarded_by_import_error_do_not_fail_the_build(tmp_path: Path) -> None:
    closure = analyzer("optional_import").analyze("fn")
    assert set(closure.modules) == {"shared", "shared.present"}
    assert closure.distributions == {}
    assert run_bundle(build("optional_import", "fn", tmp_path)) == "present+None+None+None"


def test_type_checking_imports_are_left_out(tmp_path: Path) -> None:
    closure = analyzer("type_checking").analyze("fn")
    assert set(closure.modules) == {"shared", "shared.runtime_dep", "shared.runtime_else"}
    assert "pydantic" not in closure.distributions
    assert requirements(closure) == "\n"
    assert run_bundle(build("type_checking", "fn", tmp_path)) == "runtime+else+None"


def test_declared_data_files_are_bundled(tmp_path: Path) -> None:
    closure = analyzer("data_files").analyze("fn")
    assert set(closure.data_files) == {"shared/settings.toml"}  # other.toml's module is not imported
    assert closure.data_files["shared/settings.toml"][1].render() == "main → shared.settings → settings.toml"
    bundle = build("data_files", "fn", tmp_path)
    assert "shared/settings.toml" in bundle_files(bundle)
    assert "shared/other.toml" not in bundle_files(bundle)
    assert run_bundle(bundle) == "hello from settings.toml"


def test_function_local_helper_and_its_data_file_sit_beside_main(tmp_path: Path) -> None:
    bundle = build("data_files", "with_local", tmp_path)
    assert bundle_files(bundle) == {"main.py", "helper.py", "sample.json", "requirements.txt", "manifest.json"}
    assert run_bundle(bundle) == "local data"


def test_a_declared_data_file_that_does_not_exist_fails(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"main → shared\.broken: .*'absent\.toml' which does not exist"):
        build_function("broken", tmp_path, analyzer("data_files"))


# --------------------------------------------------------------------------------------
# failures carry the chain
# --------------------------------------------------------------------------------------
def test_an_imported_missing_module_fails_with_its_chain(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as info:
        build_function("fn", tmp_path, analyzer("missing_module"))
    assert "main → shared.a → shared.missing" in str(info.value)
    assert "does not exist" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


@pytest.mark.parametrize("function", ["uses_ghost", "uses_real"])
def test_a_lazy_entry_pointing_nowhere_fails(function: str) -> None:
    # uses_real only imports a good name, but SHARED_EAGER (and any getattr) would load the
    # dangling entry of that same package, so an included package must have a sound map
    with pytest.raises(BuildError, match=r"lazy map of shared sends 'Ghost' to '\.ghost' \(shared\.ghost\)"):
        analyzer("lazy_dangling").analyze(function)


@pytest.mark.parametrize(
    ("function", "chain"),
    [
        ("direct", "main → definitely_not_installed_pkg"),
        ("via_shared", "main → shared.client → definitely_not_installed_pkg"),
    ],
)
def test_an_unmapped_third_party_import_fails(function: str, chain: str) -> None:
    with pytest.raises(BuildError) as info:
        analyzer("unmapped_third_party").analyze(function)
    assert str(info.value).startswith(f"{chain}: third-party import 'definitely_not_installed_pkg'")
    assert "no installed distribution" in str(info.value)


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("imports_tests", "main → tests.support: a function may not import tests/"),
        ("imports_deploy", "main → deploy: a function may not import deploy/"),
        ("imports_function", "main → functions.other: a function may not import functions/"),
        ("indirect", "main → shared.tooling → deploy.bundle: a function may not import deploy/"),
        ("imports_cli", "main → phasectl: a function may not import phasectl/"),
        ("indirect_cli", "main → shared → shared.operator → phasectl.report: a function may not import phasectl/"),
    ],
)
def test_importing_tests_deploy_the_cli_or_another_function_fails(function: str, message: str) -> None:
    with pytest.raises(BuildError) as info:
        analyzer("forbidden").analyze(function)
    assert str(info.value).startswith(message)


def test_an_unknown_function_fails() -> None:
    with pytest.raises(BuildError, match="does not exist"):
        analyzer("chain").analyze("no_such_function")


# --------------------------------------------------------------------------------------
# third-party mapping
# --------------------------------------------------------------------------------------
def test_third_party_imports_map_to_pinned_distributions() -> None:
    closure = analyzer("third_party").analyze("mapped")
    expected = ["google-cloud-firestore", "protobuf", "pydantic", "requests"]
    assert requirements(closure).splitlines() == [f"{d}=={md.version(d)}" for d in expected]
    assert closure.distributions["pydantic"][1].render() == "main → shared.models → pydantic"
    assert closure.distributions["google-cloud-firestore"][2] == {"google.cloud.firestore"}
    data = manifest(closure, TREES / "third_party")
    assert isinstance(data["requirements"], dict)
    assert "google.protobuf.timestamp_pb2" in data["requirements"]["protobuf"]["imports"]
    assert requirements(analyzer("third_party").analyze("stdlib_only")) == "\n"


def test_distribution_for() -> None:
    assert distribution_for("pydantic") == "pydantic"
    assert distribution_for("requests.adapters") == "requests"
    assert distribution_for("google.cloud.firestore_v1.base_client") == "google-cloud-firestore"
    assert distribution_for("google.cloud.pubsub_v1") == "google-cloud-pubsub"
    assert distribution_for("google.protobuf.timestamp_pb2") == DISTRIBUTION_OVERRIDES["google.protobuf"]
    assert distribution_for("google.cloud") is None  # a namespace: no single distribution
    assert distribution_for("definitely_not_installed_pkg") is None


# --------------------------------------------------------------------------------------
# output: deterministic zip, rebuilt from changed sources
# --------------------------------------------------------------------------------------
def test_zip_is_byte_identical_for_identical_input(tmp_path: Path) -> None:
    first = build_function("alpha", tmp_path / "one", analyzer("new_module"))
    tree = tmp_path / "copy"
    shutil.copytree(TREES / "new_module", tree)
    for path in tree.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))  # other mtimes, same content
    second = build_function("alpha", tmp_path / "two", analyzer(tree))
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert set(names) == bundle_files(tmp_path / "one" / "alpha")


def test_an_edited_source_is_analysed_again(tmp_path: Path) -> None:
    tree = tmp_path / "chain"
    shutil.copytree(TREES / "chain", tree)
    before = build_function("fn", tmp_path / "before", analyzer(tree)).read_bytes()
    (tree / "shared" / "c.py").write_text('"""C now imports D."""\n\nfrom shared.d import VALUE as D\n\nVALUE = D\n')
    assert modules(tree, "fn") == {"shared", "shared.a", "shared.b", "shared.c", "shared.d"}
    after = build_function("fn", tmp_path / "after", analyzer(tree)).read_bytes()
    assert after != before
    assert run_bundle(tmp_path / "after" / "fn") == "abd"


# --------------------------------------------------------------------------------------
# the repo's own functions
# --------------------------------------------------------------------------------------
HEAVY = ("pandas", "psutil", "pyarrow")
NEEDED = ("functions-framework", "google-cloud-firestore", "google-cloud-pubsub", "pydantic", "cloudevents")


@pytest.fixture(scope="module")
def repo_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Every function built twice, into two directories."""
    one, two = tmp_path_factory.mktemp("build-one"), tmp_path_factory.mktemp("build-two")
    for name in functions():
        build_function(name, one)
        build_function(name, two)
    return one, two


def _requirement_names(bundle: Path) -> dict[str, str]:
    lines = (bundle / "requirements.txt").read_text().splitlines()
    return dict(line.split("==", 1) for line in lines)


def test_repo_has_functions_and_transition_functions() -> None:
    names = set(functions())
    transitions = {t.name for t in load_definition().transitions}
    assert transitions and transitions <= names


def test_transition_bundles_need_only_the_light_distributions(repo_builds: tuple[Path, Path]) -> None:
    out, _ = repo_builds
    for transition in load_definition().transitions:
        reqs = _requirement_names(out / transition.name)
        for needed in NEEDED:
            assert needed in reqs, (transition.name, reqs)
        for heavy in HEAVY:
            assert heavy not in {r.lower() for r in reqs}, (transition.name, heavy)
        for dist, version in reqs.items():
            assert "[" not in dist, f"{transition.name}: extras in {dist}"
            assert version == md.version(dist), (dist, version)  # pinned to what the project is tested with


def test_no_bundle_carries_local_cloud_or_tooling(repo_builds: tuple[Path, Path]) -> None:
    out, _ = repo_builds
    for name in functions():
        with zipfile.ZipFile(out / f"{name}.zip") as archive:
            names = archive.namelist()
        assert not [n for n in names if n.startswith("deploy/local")], name
        assert not [n for n in names if n.split("/")[0] in ("tests", "deploy", "functions", "phasectl")], name
        data = json.loads((out / name / "manifest.json").read_text())
        assert not [m for m in data["modules"] if m.startswith("deploy.local")], name
        assert not [m for m in data["modules"] if m.split(".")[0] == "phasectl"], name  # the operator CLI
        for dist, entry in data["requirements"].items():  # every distribution is imported by the closure
            # imported from main, or from a module the definition selects (the gate backend: gated transitions only)
            assert entry["imports"] and entry["chain"].startswith(("main → ", "definition: ")), (name, dist)


def test_transition_bundles_carry_the_pipeline_definition(repo_builds: tuple[Path, Path]) -> None:
    out, _ = repo_builds
    for transition in load_definition().transitions:
        bundle = out / transition.name
        assert (bundle / "shared" / "pipeline" / "pipeline.toml").read_bytes() == (
            REPO / "shared" / "pipeline" / "pipeline.toml"
        ).read_bytes()
        data = json.loads((bundle / "manifest.json").read_text())
        assert "shared.pipeline.definition" in data["modules"]
        why = data["data_files"]["shared/pipeline/pipeline.toml"]
        assert why.endswith("shared.pipeline.definition → pipeline.toml")


def test_bundles_ship_the_definition_precompiled_and_equal_to_the_toml(repo_builds: tuple[Path, Path]) -> None:
    from shared.pipeline.definition import load_compiled, read_definition

    out, _ = repo_builds
    for transition in load_definition().transitions:
        toml = out / transition.name / "shared" / "pipeline" / "pipeline.toml"
        compiled = load_compiled(toml)
        assert compiled is not None, transition.name
        assert compiled == read_definition(toml)


def test_the_gate_backend_ships_only_where_the_definition_lists_gates(repo_builds: tuple[Path, Path]) -> None:
    """Issue 18: a gateless transition ships neither the gate backend nor google-cloud-bigquery."""
    out, _ = repo_builds
    definition = load_definition()
    backend = ("shared.orchestration.gate_queries", "shared.gcp_bigquery")
    for transition in definition.transitions:
        data = json.loads((out / transition.name / "manifest.json").read_text())
        requirements = _requirement_names(out / transition.name)
        if transition.gates:
            for module in backend:
                assert data["modules"][module]["chain"].startswith(f"definition: gates of {transition.name}")
            assert "google-cloud-bigquery" in requirements
        else:
            assert not [m for m in backend if m in data["modules"]], transition.name
            assert "google-cloud-bigquery" not in requirements, transition.name
            assert "shared.orchestration.outbox" not in data["modules"]  # the outbox is delivered elsewhere
    assert any(not t.gates for t in definition.transitions)  # today phase5_to_phase6: the check is live
    monitor = json.loads((out / "phase_transition_monitor" / "manifest.json").read_text())
    assert all(m in monitor["modules"] for m in backend)  # it re-evaluates every transition


def test_repo_zips_are_byte_identical_across_builds(repo_builds: tuple[Path, Path]) -> None:
    one, two = repo_builds
    for name in functions():
        assert (one / f"{name}.zip").read_bytes() == (two / f"{name}.zip").read_bytes(), name


def test_explain_names_the_chain() -> None:
    name = "phase3_to_phase4" if "phase3_to_phase4" in functions() else functions()[0]
    why = explain(name, "shared.pipeline.definition")
    assert why.startswith("shared.pipeline.definition: main → ")
    assert why.endswith(" → shared.pipeline.definition")
    firestore = explain(name, "google-cloud-firestore")
    assert firestore.startswith(f"google-cloud-firestore=={md.version('google-cloud-firestore')} ")
    assert "main → " in firestore and firestore.endswith("google.cloud.firestore")
    assert explain(name, "pandas") == f"pandas is not in the {name} bundle"
    everything = explain(name)
    assert "shared.pipeline.definition: main → " in everything and "google-cloud-firestore==" in everything


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_build_and_explain(tmp_path: Path) -> None:
    ok = _cli("build", "--out", str(tmp_path))
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == functions()
    assert all("sha256=" in line for line in lines)
    assert {p.name for p in tmp_path.glob("*.zip")} == {f"{n}.zip" for n in functions()}

    why = _cli("explain", functions()[0], "shared.pipeline.definition")
    assert why.returncode == 0 and why.stdout.startswith("shared.pipeline.definition: main → ")


def test_cli_build_failure_exits_1(tmp_path: Path) -> None:
    failed = _cli("build", "no_such_function", "--out", str(tmp_path))
    assert failed.returncode == 1
    assert failed.stderr.startswith("build failed: ")
    assert "no_such_function" in failed.stderr


# --------------------------------------------------------------------------------------
# helpers of the verification test and the benchmark
# --------------------------------------------------------------------------------------
def test_sample_events_are_valid_completions_that_record_and_wait() -> None:
    """The verification test's event must be a valid completion that never fires a trigger alone."""
    definition = load_definition()
    game_date = past_game_date(definition)
    clock = SystemClock()
    for transition in definition.transitions:
        payload = sample_completion(definition, transition.name, game_date)
        completion = ProcessorCompletion.model_validate(payload)
        assert completion.phase == transition.source_phase
        canonical = definition.normalise_processor(transition.source_phase, completion.processor_name)
        assert canonical == completion.processor_name
        record = CompletionRecord(
            raw_name=completion.processor_name,
            processor=canonical,
            status=str(completion.status),
            execution_id=completion.execution_id,
            completed_at=clock.now(),
            record_count=completion.record_count,
            completion_pct=completion.completion_pct,
        )
        decision = decide(definition, transition, game_date, [record], clock)
        assert isinstance(decision, Wait), (transition.name, decision)


def test_benchmark_replaces_only_its_own_section() -> None:
    new = "## Bundles\n\nnew numbers\n"
    assert replace_section("# Benchmarks\n\n## A\na\n", new) == "# Benchmarks\n\n## A\na\n\n## Bundles\n\nnew numbers\n"
    before = "# Benchmarks\n\n## A\na\n\n## Bundles\n\nold\n\n## C\nc\n"
    assert replace_section(before, new) == "# Benchmarks\n\n## A\na\n\n## Bundles\n\nnew numbers\n\n## C\nc\n"
    last = "# Benchmarks\n\n## A\na\n\n## Bundles\n\nold\n"
    assert replace_section(last, new) == "# Benchmarks\n\n## A\na\n\n## Bundles\n\nnew numbers\n"


def test_a_gated_transition_without_its_gate_backend_fails_at_cold_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bundle built before its transition got gates (stale build) must fail loudly at import."""
    import importlib.util

    from shared.orchestration import entrypoint

    real = importlib.util.find_spec

    def without_backend(name: str, *args: object) -> object:
        return None if name == "shared.gcp_bigquery" else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "cold-start-test")
    monkeypatch.setattr(importlib.util, "find_spec", without_backend)
    with pytest.raises(ImportError, match=r"phase3_to_phase4 has gates but its bundle lacks \['shared.gcp_bigquery'\]"):
        entrypoint.validate_environment("phase3_to_phase4")
    entrypoint.validate_environment("phase5_to_phase6")  # no gates: nothing to find
