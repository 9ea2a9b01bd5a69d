"""AlertManager on the Firestore emulator: deduplicated, rate-limited alerts (lesson L12).

Findings are built directly; the dedup records live in the real ``monitor_alerts``
collection (the ``cloud`` fixture empties Firestore per test). Alerts are structured log
lines, captured with ``shared.structured_log.configure(stream=...)``; the Slack webhook is a
local ``http.server`` in a thread.
"""

from __future__ import annotations

import http.server
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from deploy.local.emulators import LocalCloud, free_port
from shared import structured_log
from shared.clock import FixedClock
from shared.gcp import firestore_client
from shared.monitor.alerts import AlertManager, slack_from_env
from shared.monitor.findings import Finding
from shared.pipeline.definition import PipelineDefinition
from shared.structured_log import RUNBOOK_URL_ENV
from tests.support.rig import isolated_definition

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 25, 14, 0, tzinfo=UTC)
DAY = date(2026, 1, 24)
SECRET = "T0FAKE/B0FAKE/xoxb-secret-token-4f2a"  # the part of a webhook URL that is a credential


def stuck(missing: list[str], message: str = "phase3_to_phase4 2026-01-24: not triggered 65 min after") -> Finding:
    return Finding("stuck", "WARNING", message, "phase3_to_phase4", DAY, {"missing": missing})


def silent() -> Finding:
    return Finding(
        "silent", "ERROR", "phase2_to_phase3 2026-01-24: 5 Final game(s)", "phase2_to_phase3", DAY, {"final_games": 5}
    )


def grid(dates: list[str]) -> Finding:
    return Finding("grid_gap", "CRITICAL", f"{len(dates)} date(s) had no phase-6 trigger", details={"dates": dates})


def deadline() -> Finding:
    return Finding(
        "deadline_trigger",
        "INFO",
        "phase4_to_phase5 2026-01-24: triggered by the monitor",
        "phase4_to_phase5",
        DAY,
        {"trigger_id": "phase4_to_phase5:2026-01-24:g1"},
    )


def retry_overdue() -> Finding:
    return Finding("retry_overdue", "WARNING", "1 pending retry row(s) overdue", details={"rows": ["bdl@2026-01-24"]})


# ---------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------
@dataclass
class Alerts:
    definition: PipelineDefinition
    clock: FixedClock
    manager: AlertManager
    log: io.StringIO

    def records(self) -> dict[str, dict[str, Any]]:
        collection = self.manager.firestore.collection(self.definition.monitor.alert_collection)
        return {d.id: d.to_dict() or {} for d in collection.stream()}

    def log_entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.getvalue().splitlines() if line.strip()]

    def alert_lines(self) -> list[dict[str, Any]]:
        return [e for e in self.log_entries() if "alert" in e.get(structured_log.LABELS_KEY, {})]


def make_alerts(cloud: LocalCloud, unique: str, log: io.StringIO, *, mutate: Any = None, slack: Any = None) -> Alerts:
    definition = isolated_definition(unique, mutate)
    clock = FixedClock(NOW)
    manager = AlertManager(definition, firestore_client(cloud.project), clock, slack)
    return Alerts(definition, clock, manager, log)


@pytest.fixture(autouse=True)
def _repository_runbook(monkeypatch: pytest.MonkeyPatch) -> None:
    """Links point at the repository's runbook (``docs/operations.md#<kind>``), whatever the shell sets."""
    monkeypatch.delenv(RUNBOOK_URL_ENV, raising=False)


@pytest.fixture
def alerts(cloud: LocalCloud, unique: str, captured_log: io.StringIO) -> Alerts:
    return make_alerts(cloud, unique, captured_log)


@dataclass
class Webhook:
    """A local Slack stand-in: records every POSTed JSON body; answers ``status``."""

    status: int = 200
    bodies: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


@pytest.fixture
def webhook() -> Iterator[tuple[Webhook, str]]:
    hook = Webhook()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            hook.bodies.append(json.loads(self.rfile.read(length)))
            hook.paths.append(self.path)
            self.send_response(hook.status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook, f"http://127.0.0.1:{server.server_address[1]}/services/{SECRET}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# ---------------------------------------------------------------------------------------
# deduplication
# ---------------------------------------------------------------------------------------
def test_new_finding_is_alerted_then_suppressed_while_unchanged(alerts: Alerts) -> None:
    finding = stuck(["team_offense_game_summary"])

    first = alerts.manager.process([finding])

    assert first.alerted == [finding.key] == ["stuck__phase3_to_phase4__2026-01-24"]
    record = alerts.records()[finding.key]
    assert record["fingerprint"] == finding.fingerprint
    assert record["last_alerted_at"] == record["first_seen_at"] == NOW
    assert (record["kind"], record["severity"], record["game_date"]) == ("stuck", "WARNING", "2026-01-24")
    assert record["runbook"] == "docs/operations.md#stuck"
    (line,) = alerts.alert_lines()
    assert line["severity"] == "WARNING" and line["message"] == finding.message
    assert line[structured_log.LABELS_KEY] == {
        "alert": "stuck",
        "alert_key": finding.key,
        "runbook": "docs/operations.md#stuck",  # the runbook section (issue 16)
        "fix": "phasectl trigger --transition phase3_to_phase4 --date 2026-01-24",  # its command (issue 28)
    }
    assert record["command"] == "phasectl trigger --transition phase3_to_phase4 --date 2026-01-24"

    alerts.clock.advance(minutes=10)
    second = alerts.manager.process([stuck(["team_offense_game_summary"], message="... 75 min after")])

    assert second.alerted == [] and second.suppressed == [finding.key] and second.resolved == []
    assert len(alerts.alert_lines()) == 1  # nothing logged again: the wording of times is not a change
    assert alerts.records()[finding.key]["last_alerted_at"] == NOW


def test_changed_details_are_alerted_again(alerts: Alerts) -> None:
    alerts.manager.process([stuck(["team_offense_game_summary", "upcoming_team_game_context"])])
    alerts.clock.advance(minutes=10)

    changed = alerts.manager.process([stuck(["upcoming_team_game_context"])])

    assert changed.alerted == ["stuck__phase3_to_phase4__2026-01-24"] and changed.suppressed == []
    record = alerts.records()["stuck__phase3_to_phase4__2026-01-24"]
    assert record["fingerprint"] == stuck(["upcoming_team_game_context"]).fingerprint
    assert record["first_seen_at"] == NOW and record["last_alerted_at"] == NOW + timedelta(minutes=10)
    assert len(alerts.alert_lines()) == 2


def test_unchanged_finding_is_realerted_after_the_dedup_window(alerts: Alerts) -> None:
    dedup = alerts.definition.monitor.alert_dedup_minutes
    finding = silent()
    assert alerts.manager.process([finding]).alerted == [finding.key]

    alerts.clock.advance(minutes=dedup - 1)
    assert alerts.manager.process([finding]).suppressed == [finding.key]

    alerts.clock.advance(minutes=1)
    again = alerts.manager.process([finding])
    assert again.alerted == [finding.key]
    record = alerts.records()[finding.key]
    assert record["first_seen_at"] == NOW and record["last_alerted_at"] == NOW + timedelta(minutes=dedup)

    alerts.clock.advance(minutes=10)  # the window restarts at the re-alert
    assert alerts.manager.process([finding]).suppressed == [finding.key]
    assert len(alerts.alert_lines()) == 2


def test_finding_that_stops_firing_is_resolved_once(alerts: Alerts) -> None:
    gone, staying = silent(), grid(["2025-10-17"])
    alerts.manager.process([gone, staying])

    alerts.clock.advance(minutes=10)
    result = alerts.manager.process([staying])

    assert result.resolved == [gone.key] and result.suppressed == [staying.key] and result.alerted == []
    assert set(alerts.records()) == {staying.key}
    resolved_lines = [e for e in alerts.log_entries() if e["message"].startswith("resolved: ")]
    assert [e["message"] for e in resolved_lines] == [f"resolved: {gone.message}"]
    assert resolved_lines[0][structured_log.LABELS_KEY]["alert_key"] == gone.key

    alerts.clock.advance(minutes=10)
    assert alerts.manager.process([staying]).resolved == []  # resolved once, not every run
    assert alerts.manager.process([staying, gone]).alerted == [gone.key]  # back again: a new alert


def test_at_most_max_alerts_per_run_most_severe_first(
    cloud: LocalCloud, unique: str, captured_log: io.StringIO
) -> None:
    def two_per_run(data: dict[str, Any]) -> None:
        data["monitor"]["max_alerts_per_run"] = 2

    alerts = make_alerts(cloud, unique, captured_log, mutate=two_per_run)
    findings = [deadline(), retry_overdue(), silent(), grid(["2025-10-17"]), stuck(["ml_feature_store"])]

    first = alerts.manager.process(findings)
    assert first.alerted == ["grid_gap", silent().key]  # CRITICAL, then ERROR
    assert sorted(first.rate_limited) == sorted([deadline().key, retry_overdue().key, stuck([]).key])
    assert set(alerts.records()) == set(first.alerted)  # a rate-limited finding is not recorded as alerted

    alerts.clock.advance(minutes=10)
    second = alerts.manager.process(findings)
    assert second.alerted == [retry_overdue().key, stuck([]).key]  # the WARNINGs, whose turn it is now
    assert sorted(second.suppressed) == sorted(first.alerted) and second.rate_limited == [deadline().key]

    alerts.clock.advance(minutes=10)
    third = alerts.manager.process(findings)
    assert third.alerted == [deadline().key] and third.rate_limited == []
    assert len(alerts.alert_lines()) == len(findings)  # every finding alerted exactly once over three runs


# ---------------------------------------------------------------------------------------
# expiry (L25)
# ---------------------------------------------------------------------------------------
def test_fault_alert_records_carry_an_expiry(alerts: Alerts) -> None:
    """Every record set carries ``retention.expiry_field`` = now + ``alerts_days`` (a Firestore TTL policy
    deletes what is left behind). Before: records had no expiry field, nothing could ever expire them."""
    retention = alerts.definition.retention
    assert (retention.expiry_field, retention.alerts_days) == ("expires_at", 30)
    finding, other = silent(), grid(["2025-10-17"])

    alerts.manager.process([finding, other])
    records = alerts.records()
    assert {key: r["expires_at"] for key, r in records.items()} == {
        finding.key: NOW + timedelta(days=30),
        other.key: NOW + timedelta(days=30),
    }

    # re-alerted after the dedup window (the record is set again): the expiry moves with it
    alerts.clock.advance(minutes=alerts.definition.monitor.alert_dedup_minutes)
    assert alerts.manager.process([finding, other]).alerted == [other.key, finding.key]  # CRITICAL first
    later = alerts.clock.now() + timedelta(days=30)
    assert {r["expires_at"] for r in alerts.records().values()} == {later}


def test_alert_expiry_follows_the_definition(cloud: LocalCloud, unique: str, captured_log: io.StringIO) -> None:
    def short(data: dict[str, Any]) -> None:
        data.setdefault("retention", {}).update({"alerts_days": 2, "expiry_field": "ttl_at"})

    alerts = make_alerts(cloud, unique, captured_log, mutate=short)
    alerts.manager.process([silent()])
    (record,) = alerts.records().values()
    assert record["ttl_at"] == NOW + timedelta(days=2) and "expires_at" not in record


# ---------------------------------------------------------------------------------------
# Slack
# ---------------------------------------------------------------------------------------
def test_slack_webhook_gets_the_text_and_its_url_is_never_logged(
    cloud: LocalCloud,
    unique: str,
    captured_log: io.StringIO,
    webhook: tuple[Webhook, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook, url = webhook
    definition = isolated_definition(unique)
    monkeypatch.setenv(definition.monitor.slack_webhook_env, url)
    slack = slack_from_env(definition)
    assert slack is not None
    alerts = make_alerts(cloud, unique, captured_log, slack=slack)

    result = alerts.manager.process([grid(["2025-10-17"]), deadline(), stuck(["ml_feature_store"])])

    assert result.slack_errors == 0 and len(result.alerted) == 3
    assert [b["text"] for b in hook.bodies] == [  # INFO findings are logged, not posted
        f"[CRITICAL] {grid(['2025-10-17']).message}\nFix: phasectl gaps --season\nRunbook: docs/operations.md#grid_gap",
        f"[WARNING] {stuck(['ml_feature_store']).message}\n"
        "Fix: phasectl trigger --transition phase3_to_phase4 --date 2026-01-24\nRunbook: docs/operations.md#stuck",
    ]
    assert hook.paths == [f"/services/{SECRET}"] * 2

    alerts.clock.advance(minutes=10)
    alerts.manager.process([grid(["2025-10-17"]), deadline(), stuck(["ml_feature_store"])])
    assert len(hook.bodies) == 2  # deduplicated for Slack too

    output = captured_log.getvalue()
    assert [e[structured_log.LABELS_KEY]["alert"] for e in alerts.alert_lines()].count("grid_gap") == 1
    assert url not in output and SECRET not in output and "/services/" not in output


def test_failed_slack_delivery_is_counted_and_logged_without_the_url(
    cloud: LocalCloud,
    unique: str,
    captured_log: io.StringIO,
    webhook: tuple[Webhook, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook, url = webhook
    hook.status = 500
    definition = isolated_definition(unique)
    unreachable = f"http://127.0.0.1:{free_port()}/services/{SECRET}"
    for target, posted in ((url, 1), (unreachable, 0)):
        monkeypatch.setenv(definition.monitor.slack_webhook_env, target)
        alerts = make_alerts(cloud, unique, captured_log, slack=slack_from_env(definition))
        cloud.reset_firestore()
        hook.bodies.clear()

        result = alerts.manager.process([silent()])

        assert result.alerted == [silent().key]  # the alert itself is logged whatever Slack does
        assert result.slack_errors == 1, target
        assert len(hook.bodies) == posted
    output = captured_log.getvalue()
    assert output.count("Slack webhook delivery failed") == 2
    assert SECRET not in output and "/services/" not in output


def test_rate_limited_findings_are_summarised_on_slack(
    cloud: LocalCloud,
    unique: str,
    captured_log: io.StringIO,
    webhook: tuple[Webhook, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook, url = webhook

    def one_per_run(data: dict[str, Any]) -> None:
        data["monitor"]["max_alerts_per_run"] = 1

    definition = isolated_definition(unique, one_per_run)
    monkeypatch.setenv(definition.monitor.slack_webhook_env, url)
    alerts = make_alerts(cloud, unique, captured_log, mutate=one_per_run, slack=slack_from_env(definition))

    alerts.manager.process([silent(), grid(["2025-10-17"]), retry_overdue()])

    assert [b["text"] for b in hook.bodies] == [
        f"[CRITICAL] {grid(['2025-10-17']).message}\nFix: phasectl gaps --season\nRunbook: docs/operations.md#grid_gap",
        "2 more finding(s) rate-limited this run",
    ]


@pytest.mark.parametrize("value", ["", "   "])
def test_no_slack_without_a_webhook_url(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    definition = isolated_definition("noslack")
    monkeypatch.setenv(definition.monitor.slack_webhook_env, value)
    assert slack_from_env(definition) is None
    assert slack_from_env(definition, {}) is None


# ---------------------------------------------------------------------------------------
# the fix command and an operator's acknowledgement (issue 28)
# ---------------------------------------------------------------------------------------
def _ack(alerts: Alerts, key: str, who: str = "ana", note: str = "upstream re-run at 9") -> None:
    """What ``phasectl findings --ack`` writes on the alert document."""
    collection = alerts.manager.firestore.collection(alerts.definition.monitor.alert_collection)
    collection.document(key).update({"acked_by": who, "acked_at": NOW, "ack_note": note})


def test_the_alert_document_carries_the_fix_command(alerts: Alerts) -> None:
    blocked = Finding(
        "blocked", "ERROR", "phase2_to_phase3 2026-01-24: blocked", "phase2_to_phase3", DAY, {"missing_games": ["g"]}
    )
    alerts.manager.process([blocked, grid(["2025-10-17"])])

    records = alerts.records()
    assert records[blocked.key]["command"] == "phasectl reconcile --date 2026-01-24 --detailed"
    assert records[blocked.key]["runbook"] == "docs/operations.md#blocked"
    assert records["grid_gap"]["command"] == "phasectl gaps --season"
    fixes = {e[structured_log.LABELS_KEY]["alert"]: e[structured_log.LABELS_KEY]["fix"] for e in alerts.alert_lines()}
    assert fixes == {"blocked": records[blocked.key]["command"], "grid_gap": "phasectl gaps --season"}


def test_an_acknowledgement_survives_a_realert_of_the_same_finding(
    cloud: LocalCloud,
    unique: str,
    captured_log: io.StringIO,
    webhook: tuple[Webhook, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook, url = webhook
    definition = isolated_definition(unique)
    monkeypatch.setenv(definition.monitor.slack_webhook_env, url)
    alerts = make_alerts(cloud, unique, captured_log, slack=slack_from_env(definition))
    finding = stuck(["team_offense_game_summary", "upcoming_team_game_context"])
    alerts.manager.process([finding])
    _ack(alerts, finding.key)

    alerts.clock.advance(minutes=definition.monitor.alert_dedup_minutes)  # re-alerted: the window passed
    assert alerts.manager.process([finding]).alerted == [finding.key]
    alerts.clock.advance(minutes=10)  # re-alerted: the substance changed
    changed = stuck(["upcoming_team_game_context"])
    assert alerts.manager.process([changed]).alerted == [finding.key]

    record = alerts.records()[finding.key]
    assert (record["acked_by"], record["acked_at"], record["ack_note"]) == ("ana", NOW, "upstream re-run at 9")
    assert record["fingerprint"] == changed.fingerprint and record["first_seen_at"] == NOW
    assert record["command"] == "phasectl trigger --transition phase3_to_phase4 --date 2026-01-24"
    texts = [b["text"] for b in hook.bodies]
    assert len(texts) == 3 and "Acknowledged" not in texts[0]
    assert all(t.endswith("\nAcknowledged by ana: upstream re-run at 9") for t in texts[1:])


def test_an_acknowledgement_ends_with_the_finding(alerts: Alerts) -> None:
    finding = silent()
    alerts.manager.process([finding])
    _ack(alerts, finding.key)

    alerts.clock.advance(minutes=10)
    assert alerts.manager.process([]).resolved == [finding.key]
    alerts.clock.advance(minutes=10)
    alerts.manager.process([finding])  # it fires again: a new finding, not acknowledged

    record = alerts.records()[finding.key]
    assert "acked_by" not in record and record["first_seen_at"] == NOW + timedelta(minutes=20)
