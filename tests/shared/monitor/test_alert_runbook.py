"""Every alert carries the link to its runbook section (issue 16) — unit tests, no emulator.

``AlertManager`` runs against a small in-memory stand-in for its ``monitor_alerts`` collection (it
only streams, sets and deletes documents there); the dedup behaviour itself is tested on the real
Firestore emulator in ``test_alerts.py``. Each finding kind in the code is alerted once and its log
entry, Slack message and dedup record must link ``docs/operations.md#<kind>``, a section that exists.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

import pytest

from shared import structured_log
from shared.clock import FixedClock
from shared.monitor.alerts import AlertManager
from shared.monitor.findings import Finding
from shared.monitor.fix_commands import fix_command
from shared.pipeline.definition import PipelineDefinition, load_definition
from shared.structured_log import RUNBOOK_PATH, RUNBOOK_URL_ENV, runbook_base, runbook_link
from tests.test_docs import ROOT, anchors, finding_kinds

NOW = datetime(2026, 1, 25, 14, 0, tzinfo=UTC)
DAY = date(2026, 1, 24)


class _Snapshot:
    def __init__(self, doc_id: str, data: dict[str, Any]) -> None:
        self.id = doc_id
        self._data = data

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)


class _Document:
    def __init__(self, store: dict[str, dict[str, Any]], doc_id: str) -> None:
        self._store, self._id = store, doc_id

    def set(self, data: dict[str, Any], merge: bool = False) -> None:
        self._store[self._id] = {**(self._store.get(self._id, {}) if merge else {}), **data}

    def delete(self) -> None:
        self._store.pop(self._id, None)


class _Collection:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    def stream(self) -> list[_Snapshot]:
        return [_Snapshot(k, v) for k, v in list(self.docs.items())]

    def document(self, doc_id: str) -> _Document:
        return _Document(self.docs, doc_id)


class _Firestore:
    """What ``AlertManager`` uses of a Firestore client: one collection's stream/set/delete."""

    def __init__(self) -> None:
        self.collections: dict[str, _Collection] = defaultdict(_Collection)

    def collection(self, name: str) -> _Collection:
        return self.collections[name]


class _Slack:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def send(self, text: str) -> bool:
        self.texts.append(text)
        return True


@pytest.fixture(autouse=True)
def _no_runbook_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RUNBOOK_URL_ENV, raising=False)


@pytest.fixture(scope="module")
def definition() -> PipelineDefinition:
    return load_definition()


def _manager(definition: PipelineDefinition, **kwargs: Any) -> tuple[AlertManager, _Firestore, _Slack]:
    fs, slack = _Firestore(), _Slack()
    manager = AlertManager(definition, fs, FixedClock(NOW), slack, **kwargs)  # type: ignore[arg-type]
    return manager, fs, slack


def _alert_lines(log: io.StringIO) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in log.getvalue().splitlines() if line.strip()]
    return [e for e in entries if "alert" in e.get(structured_log.LABELS_KEY, {})]


def _resolves(link: str) -> bool:
    path, _, fragment = link.partition("#")
    return (ROOT / path).is_file() and fragment in anchors(ROOT / path)


@pytest.mark.parametrize("kind", sorted(finding_kinds()))
def test_every_finding_kind_is_alerted_with_the_link_to_its_runbook_section(
    kind: str, definition: PipelineDefinition, captured_log: io.StringIO
) -> None:
    manager, fs, slack = _manager(definition)
    finding = Finding(kind, "ERROR", f"phase3_to_phase4 2026-01-24: {kind}", "phase3_to_phase4", DAY, {"k": kind})

    assert manager.process([finding]).alerted == [finding.key]

    link = f"{RUNBOOK_PATH}#{kind}"
    assert _resolves(link), f"{link}: no such section in docs/operations.md"
    (line,) = _alert_lines(captured_log)
    fix = fix_command(finding, definition)
    assert line[structured_log.LABELS_KEY] == {"alert": kind, "alert_key": finding.key, "runbook": link, "fix": fix}
    assert line["message"] == finding.message  # the message itself is unchanged
    assert slack.texts == [f"[ERROR] {finding.message}\nFix: {fix}\nRunbook: {link}"]
    record = fs.collection(definition.monitor.alert_collection).docs[finding.key]
    assert record["runbook"] == link and record["message"] == finding.message and record["command"] == fix


def test_info_findings_are_logged_with_the_link_and_not_posted(
    definition: PipelineDefinition, captured_log: io.StringIO
) -> None:
    manager, _, slack = _manager(definition)
    finding = Finding("deadline_trigger", "INFO", "phase4_to_phase5 2026-01-24: triggered by the monitor")

    manager.process([finding])

    (line,) = _alert_lines(captured_log)
    assert line[structured_log.LABELS_KEY]["runbook"] == "docs/operations.md#deadline_trigger"
    assert slack.texts == []


def test_the_runbook_url_comes_from_the_environment(
    definition: PipelineDefinition, captured_log: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = "https://github.com/OWNER/phasechain/blob/main/docs/operations.md"
    monkeypatch.setenv(RUNBOOK_URL_ENV, f"  {page}#runbook ")  # a fragment (and blanks) are dropped
    manager, _, slack = _manager(definition)

    manager.process([Finding("stuck", "WARNING", "phase3_to_phase4 2026-01-24: not triggered", "t", DAY, {})])

    (line,) = _alert_lines(captured_log)
    assert line[structured_log.LABELS_KEY]["runbook"] == f"{page}#stuck"
    assert slack.texts[0].endswith(f"\nRunbook: {page}#stuck")


def test_the_runbook_url_can_be_given_to_the_manager(definition: PipelineDefinition) -> None:
    manager, _, _ = _manager(definition, runbook_url="https://runbook.example/ops.html")
    assert manager.runbook(Finding("grid_gap", "CRITICAL", "1 date(s)")) == "https://runbook.example/ops.html#grid_gap"


@pytest.mark.parametrize(
    ("environ", "base"),
    [
        ({}, "docs/operations.md"),
        ({RUNBOOK_URL_ENV: "   "}, "docs/operations.md"),
        ({RUNBOOK_URL_ENV: "#only-a-fragment"}, "docs/operations.md"),
        ({RUNBOOK_URL_ENV: "https://x.example/r.md#old"}, "https://x.example/r.md"),
    ],
)
def test_runbook_base(environ: dict[str, str], base: str) -> None:
    assert runbook_base(environ) == base
    assert runbook_link("stuck", runbook_base(environ)) == f"{base}#stuck"


def test_the_default_runbook_is_the_repository_file() -> None:
    assert (ROOT / RUNBOOK_PATH).is_file()
    assert runbook_link("blocked") == "docs/operations.md#blocked"
    assert _resolves(runbook_link("blocked"))
