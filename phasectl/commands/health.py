"""``phasectl health``: recent function errors and heartbeats."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from phasectl.commands.status import _active_findings, _heartbeats
from phasectl.connect import (
    FIRESTORE,
)
from phasectl.core import Context, UsageError
from shared.env import LOG_DIR_ENV

# -- health --------------------------------------------------------------------------------------
_SINCE_RE = re.compile(r"([0-9]+)\s*([smhd])")


_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(value: str) -> timedelta:
    match = _SINCE_RE.fullmatch(value.strip().lower())
    if match is None or int(match.group(1)) <= 0:
        raise UsageError(f"invalid --since {value!r}: expected a duration like 30m, 1h or 2d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@dataclass
class FunctionErrors:
    function: str
    count: int = 0
    last_at: datetime | None = None
    last_message: str | None = None
    samples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "errors": self.count,
            "last_at": None if self.last_at is None else self.last_at.isoformat(),
            "last_message": self.last_message,
        }


def read_local_errors(log_dir: Path, functions: Sequence[str], since: datetime) -> list[FunctionErrors]:
    """ERROR/CRITICAL JSON lines of each ``function-<name>.log`` at or after ``since``."""
    out = []
    for name in functions:
        entry = FunctionErrors(name)
        path = log_dir / f"function-{name}.log"
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        for line in lines:
            if not line.startswith("{"):
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if not isinstance(doc, dict) or str(doc.get("severity", "")).upper() not in ("ERROR", "CRITICAL"):
                continue
            if is_alert(doc):  # the monitor's alert about a finding: counted as a finding (degraded), not a failure
                continue
            at = _parse_time(doc.get("time") or doc.get("timestamp"))
            if at is not None and at < since:
                continue
            entry.count += 1
            if at is None or entry.last_at is None or at >= entry.last_at:
                entry.last_at, entry.last_message = at, str(doc.get("message", ""))[:200]
        out.append(entry)
    return out


# the label key of the monitor's alert log entries, valued with the finding kind (shared.monitor.alerts)
ALERT_LABEL = "alert"


def is_alert(doc: Mapping[str, Any]) -> bool:
    """A log entry that is the monitor's alert for a finding, not a function that failed."""
    labels = doc.get("logging.googleapis.com/labels") or doc.get("labels") or {}
    return isinstance(labels, Mapping) and ALERT_LABEL in labels


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _cloud_errors(ctx: Context, functions: Sequence[str], since: datetime) -> tuple[list[FunctionErrors], str | None]:
    try:
        from google.cloud import logging as cloud_logging  # type: ignore[attr-defined]
    except ImportError:
        return [], "Cloud Logging client not installed (pip install google-cloud-logging to see function errors)"
    client = cloud_logging.Client(project=ctx.project)
    out = []
    for name in functions:
        entry = FunctionErrors(name)
        service = name.replace("_", "-")
        flt = (
            f'severity>=ERROR AND timestamp>="{since.isoformat()}" AND '
            f'(resource.labels.service_name="{service}" OR resource.labels.function_name="{name}") AND '
            f"-labels.{ALERT_LABEL}:*"  # the monitor's alerts are findings (degraded), not failures
        )
        for log in client.list_entries(filter_=flt, order_by=cloud_logging.DESCENDING, max_results=100):
            entry.count += 1
            if entry.last_at is None:
                payload = log.payload
                message = payload.get("message") if isinstance(payload, dict) else payload
                entry.last_at, entry.last_message = log.timestamp, str(message)[:200]
        out.append(entry)
    return out, None


DEGRADED_SEVERITIES = ("CRITICAL", "ERROR", "WARNING")  # active monitor findings that make health degraded
EXIT_HEALTHY, EXIT_UNHEALTHY, EXIT_DEGRADED = 0, 1, 3  # 2 stays a usage or backend error


def finding_counts(findings: Sequence[Any]) -> dict[str, int]:
    """Active findings of the degrading severities, counted by severity (most severe first; zeros left out)."""
    counts = {s: sum(1 for f in findings if f.severity == s) for s in DEGRADED_SEVERITIES}
    return {s: n for s, n in counts.items() if n}


def verdict(problem: bool, counts: dict[str, int]) -> tuple[str, int]:
    """``unhealthy`` (1) over ``degraded`` (3: active ERROR/WARNING findings) over ``healthy`` (0)."""
    if problem:
        return "unhealthy", EXIT_UNHEALTHY
    if counts:
        return "degraded", EXIT_DEGRADED
    return "healthy", EXIT_HEALTHY


def cmd_health(ctx: Context, args: argparse.Namespace) -> int:
    from phasectl.report import format_table

    window = parse_since(args.since)
    now = ctx.now()
    since = now - window
    functions = list(ctx.definition.function_names())  # every deployed function, sensors' included
    log_dir = args.log_dir or ctx.env.get(LOG_DIR_ENV)
    note: str | None = None
    if log_dir:
        if not Path(log_dir).is_dir():
            raise UsageError(f"log directory {log_dir!r} does not exist")
        errors, source = read_local_errors(Path(log_dir), functions, since), f"local logs in {log_dir}"
    elif ctx.env.get("FIRESTORE_EMULATOR_HOST"):
        raise UsageError(f"local emulators in use: give the function log directory with --log-dir or ${LOG_DIR_ENV}")
    else:
        ctx.backends.ensure(FIRESTORE)  # Google Cloud: logged in? (before Cloud Logging is asked)
        errors, note = _cloud_errors(ctx, functions, since)
        source = f"Cloud Logging, project {ctx.project}"
    heartbeats = _heartbeats(ctx)
    problem = note is not None or any(e.count for e in errors) or not all(h.healthy(now) for h in heartbeats)
    findings = [f for f in _active_findings(ctx) if f.severity in DEGRADED_SEVERITIES]
    counts = finding_counts(findings)
    state, code = verdict(problem, counts)
    if args.json:
        ctx.dump(
            {
                "version": 1,
                "command": "health",
                "now": now.isoformat(),
                "since": since.isoformat(),
                "source": source,
                "note": note,
                "functions": [e.as_dict() for e in errors],
                "heartbeats": [h.as_dict(now) for h in heartbeats],
                "healthy": not problem and not counts,
                "state": state,
                "findings": counts,
            }
        )
        return code
    t = ctx.times
    ctx.print(f"phasectl health — {t.header_now(now)}; errors since {t.stamp(since)} ({args.since}) from {source}")
    if note:
        ctx.print(note)
    else:
        ctx.print(
            format_table(
                ("FUNCTION", "ERRORS", "LAST ERROR AT", "LAST ERROR"),
                [
                    (
                        e.function,
                        e.count,
                        t.stamp(e.last_at, seconds=True),
                        e.last_message or "-",
                    )
                    for e in errors
                ],
            )
        )
    for h in heartbeats:
        ctx.print(f"heartbeat: {h.describe(now, t)}")
    if counts:
        acked = sum(1 for f in findings if f.acked_by)
        listed = ", ".join(f"{n} {s}" for s, n in counts.items())
        ctx.print(f"active findings: {listed}{f' ({acked} acknowledged)' if acked else ''} (phasectl findings)")
    ctx.print({"unhealthy": "UNHEALTHY", "degraded": "DEGRADED"}.get(state, state))
    return code
