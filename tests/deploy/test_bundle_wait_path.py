"""The wait path (record → decide → wait) of every transition bundle loads only what it uses.

Issue 18: the publisher, gates, execution-log writer, quarantine and retry service are
built on first use; a wait event loads none of them, nor BigQuery or the Pub/Sub client.

Per transition (function name == transition name): the bundle is built once into a temp
dir, installed into the venv cached by its ``requirements.txt`` (as test_bundle_verify
does), and a fresh interpreter of that venv, cwd = the bundle, runs the benchmark's probe
(``tests.bench.bundles.run_probe``): ``functions_framework.create_app(target="handle",
source="main.py", signature_type="cloudevent")``, then ONE raw Pub/Sub push body through
the Flask test client: a completion of one processor of the source phase
(``sample_completion``), which records and waits. The probe must answer 2xx, the
completion must be in Firestore and the function must have logged the outcome
``waiting`` (so the test fails only for the reason it is about); then no module of
``FORBIDDEN`` may be in ``sys.modules``.

A second test per transition: a transition without gates ships no google-cloud-bigquery.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.bundle import Analyzer, build_function
from deploy.local.emulators import LocalCloud
from shared.gcp import firestore_client
from shared.orchestration.state import state_doc_id
from shared.pipeline import load_definition
from tests.bench.bundles import (
    cached_venv,
    function_env,
    lists_bigquery,
    past_game_date,
    push_body,
    run_probe,
    sample_completion,
)

pytestmark = pytest.mark.integration

VENV_CACHE = Path(__file__).parents[2] / ".cache" / "bundle-venvs"
TRANSITIONS = [t.name for t in load_definition().transitions]
# A module is forbidden on the wait path when it is one of these or below one of them.
FORBIDDEN = (
    "google.cloud.bigquery",
    "google.cloud.pubsub",
    "google.cloud.pubsub_v1",
    "shared.orchestration.gates",
    "shared.orchestration.gate_queries",
    "shared.orchestration.execution_log",
    "shared.orchestration.publisher",
    "shared.orchestration.quarantine",
    "shared.orchestration.http_delivery",
    "shared.orchestration.triggers",
    "shared.orchestration.trigger_attempt",
    "shared.orchestration.handoffs",
    "shared.retry",
)


def forbidden_loaded(modules: list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))


def outcomes(log: str) -> list[str]:
    """The ``outcome`` labels of the function's structured log lines."""
    found = []
    for line in log.splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        labels = record.get("logging.googleapis.com/labels") if isinstance(record, dict) else None
        if isinstance(labels, dict) and "outcome" in labels:
            found.append(str(labels["outcome"]))
    return found


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Every transition's bundle, built once for this module."""
    out = tmp_path_factory.mktemp("wait-path-build")
    analyzer = Analyzer()
    for name in TRANSITIONS:
        build_function(name, out, analyzer)
    yield {name: (out / name).resolve() for name in TRANSITIONS}


def test_forbidden_matches_modules_and_submodules_only() -> None:
    modules = [
        "google.cloud.bigquery",
        "google.cloud.bigquery.table",
        "google.cloud.bigquery_storage_v1",
        "google.cloud.pubsub_v1.publisher",
        "shared.retry",
        "shared.retry.service",
        "shared.retrying",
        "shared.orchestration.gates",
        "shared.orchestration.gate_queries",
        "shared.orchestration.state",
    ]
    assert forbidden_loaded(modules) == [
        "google.cloud.bigquery",
        "google.cloud.bigquery.table",
        "google.cloud.pubsub_v1.publisher",
        "shared.orchestration.gate_queries",
        "shared.orchestration.gates",
        "shared.retry",
        "shared.retry.service",
    ]


@pytest.mark.parametrize("transition", TRANSITIONS)
def test_wait_event_loads_only_the_wait_path(
    transition: str, bundles: dict[str, Path], cloud: LocalCloud, tmp_path: Path
) -> None:
    bundle = bundles[transition]
    venv = cached_venv((bundle / "requirements.txt").read_text(), VENV_CACHE)
    definition = load_definition()
    game_date = past_game_date(definition)
    payload = sample_completion(definition, transition, game_date)

    result = run_probe(
        venv, bundle, function_env(cloud.env()), push_body(payload, cloud.project), importtime=False, timeout=120
    )  # raises unless the event was answered 2xx

    # the probe did what the test is about: the completion was recorded and the function waited
    doc = (
        firestore_client(cloud.project)
        .collection(definition.pipeline.state_collection)
        .document(state_doc_id(transition, game_date))
    )
    recorded = [d.to_dict() or {} for d in doc.collection("completions").stream()]
    assert [(r.get("raw_name"), r.get("execution_id")) for r in recorded] == [
        (payload["processor_name"], payload["execution_id"])
    ], result.output[-3000:]
    assert outcomes(result.output) == ["waiting"], result.output[-3000:]

    loaded = forbidden_loaded(result.modules)
    assert not loaded, (
        f"{transition}: a wait event (record → decide → wait) loaded {len(loaded)} module(s) off the wait path:\n  "
        + "\n  ".join(loaded)
    )


@pytest.mark.parametrize("transition", TRANSITIONS)
def test_gateless_transition_ships_no_bigquery(transition: str, bundles: dict[str, Path]) -> None:
    gates = load_definition().transition(transition).gates
    if gates:
        pytest.skip(f"{transition} has gates: {', '.join(gates)}")
    bundle = bundles[transition]
    if not lists_bigquery((bundle / "requirements.txt").read_text()):
        return
    why = json.loads((bundle / "manifest.json").read_text())["requirements"]["google-cloud-bigquery"]
    pytest.fail(
        f"{transition} has no gates but its bundle's requirements.txt lists google-cloud-bigquery, "
        f"imported as {', '.join(why['imports'])} through {why['chain']}"
    )
