"""Deduplicated, rate-limited alerts: an ongoing problem alerts once per change (lesson L12).

Each finding has a key (kind, transition, date) and a fingerprint of its substance. A finding
is alerted when it is new, when its fingerprint changed, or when ``alert_dedup_minutes``
passed since it was last alerted; at most ``max_alerts_per_run`` per run. A finding that no
longer fires is resolved (logged once, its record deleted). Every record carries
``retention.expiry_field`` (now + ``retention.alerts_days``) for a Firestore TTL policy (L25).
Alerts are structured log entries (severity by level) and, when the webhook env var is set,
Slack messages. The URL is never logged. Bounded (L26): the monitor gives the step a deadline; past
it no new alert starts (each Slack post has its own 10 s timeout, each Firestore call the client's).

Every alert carries the link to its runbook section (issue 16): ``docs/operations.md#<kind>``
has one section per finding kind. The link is the ``runbook`` label of the log entry, a
``Runbook:`` line of the Slack message and a field of the dedup record. ``$MONITOR_RUNBOOK_URL``
is the runbook page's URL (e.g. the file on the repository's web view); unset, the link is the
repository-relative path.

Every alert also carries the exact ``phasectl`` command that fixes or inspects it (issue 28,
``shared.monitor.fix_commands``): the ``command`` field of the record, a ``Fix:`` line of the Slack
message and the ``fix`` label of the log entry. An operator's acknowledgement (``phasectl findings
--ack``: ``acked_by``, ``acked_at``, ``ack_note`` on the record) survives a re-alert of the same
finding: the record is merged, not replaced; it ends with the record when the finding resolves.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.clock import Clock
from shared.monitor.findings import Finding
from shared.monitor.fix_commands import fix_command
from shared.pipeline.definition import PipelineDefinition
from shared.structured_log import get_logger, runbook_base, runbook_link

if TYPE_CHECKING:
    from google.cloud import firestore

_log = get_logger("shared.monitor.alerts")
_LEVELS = {"INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


@dataclass
class AlertResult:
    alerted: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    rate_limited: list[str] = field(default_factory=list)
    slack_errors: int = 0
    late: list[str] = field(default_factory=list)  # due, but the step's deadline had passed: the next pass
    error: str | None = None  # the alert step itself failed (set by the monitor's runtime: isolated, L23)


class SlackWebhook:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self._url = url  # never logged
        self.timeout = timeout

    def send(self, text: str) -> bool:
        req = urllib.request.Request(
            self._url,
            data=json.dumps({"text": text}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return bool(200 <= resp.status < 300)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            _log.warning("Slack webhook delivery failed: %s", type(exc).__name__)  # no URL, no body
            return False


def slack_from_env(definition: PipelineDefinition, environ: Mapping[str, str] | None = None) -> SlackWebhook | None:
    url = (environ if environ is not None else os.environ).get(definition.monitor.slack_webhook_env, "").strip()
    return SlackWebhook(url) if url else None


class AlertManager:
    def __init__(
        self,
        definition: PipelineDefinition,
        firestore_client: firestore.Client,
        clock: Clock,
        slack: SlackWebhook | None = None,
        runbook_url: str | None = None,
    ) -> None:
        self.definition = definition
        self.firestore = firestore_client
        self.clock = clock
        self.slack = slack
        self.runbook_url = (runbook_url or "").split("#", 1)[0] or runbook_base()  # the page; + "#<kind>"

    def runbook(self, finding: Finding) -> str:
        """The link to ``finding``'s runbook section."""
        return runbook_link(finding.kind, self.runbook_url)

    def command(self, finding: Finding) -> str:
        """The exact ``phasectl`` command that fixes or inspects ``finding``."""
        return fix_command(finding, self.definition)

    def _collection(self) -> Any:
        return self.firestore.collection(self.definition.monitor.alert_collection)

    def process(self, findings: Sequence[Finding], *, deadline: float | None = None) -> AlertResult:
        """Alert what is due, most severe first; resolve what no longer fires.

        ``deadline`` (``time.monotonic()``, the monitor's: L26): past it no new alert, resolution or
        Slack post starts; the due findings left are ``late`` (no record written: due again next pass).
        """
        settings = self.definition.monitor
        now = self.clock.now()
        result = AlertResult()
        known = {d.id: d.to_dict() or {} for d in self._collection().stream()}
        current = {f.key: f for f in findings}

        def out_of_time() -> bool:
            return deadline is not None and time.monotonic() >= deadline

        for key, finding in sorted(current.items(), key=lambda kv: -_LEVELS[kv[1].severity]):
            previous = known.get(key)
            last_at = previous.get("last_alerted_at") if previous else None
            due = (
                previous is None
                or previous.get("fingerprint") != finding.fingerprint
                or not isinstance(last_at, datetime)
                or now - last_at >= timedelta(minutes=settings.alert_dedup_minutes)
            )
            if not due:
                result.suppressed.append(key)
                continue
            if len(result.alerted) >= settings.max_alerts_per_run:
                result.rate_limited.append(key)
                continue
            if out_of_time():
                result.late.append(key)
                continue
            if not self._emit(finding, previous):
                result.slack_errors += 1
            result.alerted.append(key)
            # merged: an operator's acknowledgement (acked_by/acked_at/ack_note) survives the re-alert
            self._collection().document(key).set(
                {
                    "kind": finding.kind,
                    "severity": finding.severity,
                    "message": finding.message,
                    "fingerprint": finding.fingerprint,
                    "first_seen_at": (previous or {}).get("first_seen_at", now),
                    "last_alerted_at": now,
                    "transition": finding.transition,
                    "game_date": str(finding.game_date) if finding.game_date else None,
                    "subject": finding.subject,
                    "runbook": self.runbook(finding),
                    "command": self.command(finding),
                    **self._expiry(now),
                },
                merge=True,
            )
        for key in sorted(set(known) - set(current)):
            if out_of_time():
                break  # resolved on a later pass
            _log.info("resolved: %s", known[key].get("message", key), extra={"labels": {"alert_key": key}})
            self._collection().document(key).delete()
            result.resolved.append(key)
        if self.slack is not None and len(result.rate_limited) and not out_of_time():
            if not self.slack.send(f"{len(result.rate_limited)} more finding(s) rate-limited this run"):
                result.slack_errors += 1
        return result

    def _expiry(self, now: datetime) -> dict[str, datetime]:
        """The record's expiry for the collection's Firestore TTL policy (L25). A record lives while its
        finding fires: it is rewritten at each (re-)alert, at least every ``alert_dedup_minutes``."""
        retention = self.definition.retention
        return {retention.expiry_field: now + timedelta(days=retention.alerts_days)}

    def _emit(self, finding: Finding, previous: Mapping[str, Any] | None = None) -> bool:
        """Log the alert and post it to Slack, each with its runbook link and fix command (and who
        acknowledged it, when someone did); ``False`` when a Slack delivery failed."""
        runbook, command = self.runbook(finding), self.command(finding)
        _log.log(
            _LEVELS[finding.severity],
            finding.message,
            extra={
                "labels": {"alert": finding.kind, "alert_key": finding.key, "runbook": runbook, "fix": command},
                "fields": {"details": finding.details},
            },
        )
        if self.slack is not None and finding.severity in ("ERROR", "CRITICAL", "WARNING"):
            return self.slack.send(slack_text(finding, runbook, command, previous))
        return True


def slack_text(finding: Finding, runbook: str, command: str, record: Mapping[str, Any] | None = None) -> str:
    """The Slack message of an alert: ``[SEV] message``, ``Fix: command``, ``Runbook: link`` and, when
    its record says an operator acknowledged it, ``Acknowledged by WHO: NOTE``."""
    lines = [f"[{finding.severity}] {finding.message}", f"Fix: {command}", f"Runbook: {runbook}"]
    by = (record or {}).get("acked_by")
    if by:
        note = (record or {}).get("ack_note")
        lines.append(f"Acknowledged by {by}" + (f": {note}" if note else ""))
    return "\n".join(lines)
