"""``phasectl logs --function F``: one function's log entries, newest last (like ``tail``).

Local cloud (``--log-dir`` or ``$PHASECTL_LOG_DIR``): the file ``function-<name>.log`` that
``phasectl local up`` writes per function (its process's stdout and stderr): one Cloud Logging JSON
object per line (``shared.structured_log``: ``severity``, ``message``, ``time``, the labels under
``logging.googleapis.com/labels``) between the plain lines of the server (its start-up banner, a
traceback). Consecutive plain lines are one entry, at the time of the JSON line before them (at
the start of the file: no time, always shown); a traceback among them makes it an ERROR.

Google Cloud: Cloud Logging through the ``google-cloud-logging`` client (as ``phasectl health``
reads function errors): one ``entries.list`` call with the filter ``cloud_filter`` builds (the
function's Cloud Run service or Cloud Function, the window, ``severity>=``, the ``game_date``
label), newest first, at most ``--limit``, abandoned after ``--timeout``.

``--severity S`` keeps S and above; ``--date D`` keeps the entries labelled with game date D.
"""

from __future__ import annotations

import argparse
import difflib
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phasectl.argtypes import bounded_int
from phasectl.commands.audit import epilog
from phasectl.core import Context, UsageError, _date, iso
from shared.clock import rfc3339
from shared.env import LOG_DIR_ENV
from shared.structured_log import LABELS_KEY

if TYPE_CHECKING:
    from phasectl.timefmt import TimeView

JSON_VERSION = 1
LIMIT_DEFAULT = 100
LIMIT_MAX = 5000
# Cloud Logging's LogSeverity, in order
SEVERITIES = ("DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY")
RANK = {name: i for i, name in enumerate(SEVERITIES)}
TRACEBACK = "Traceback (most recent call last)"


@dataclass(frozen=True)
class LogEntry:
    time: datetime | None
    severity: str
    message: str
    labels: Mapping[str, str] = field(default_factory=dict)
    execution_id: str | None = None

    @property
    def game_date(self) -> str | None:
        return self.labels.get("game_date")

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": iso(self.time),
            "severity": self.severity,
            "message": self.message,
            "labels": dict(sorted(self.labels.items())),
            "execution_id": self.execution_id,
        }


# -- pure: the local files -------------------------------------------------------------------------
def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _json_entry(doc: Mapping[str, Any]) -> LogEntry:
    labels = doc.get(LABELS_KEY)
    found = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}
    if "game_date" not in found and isinstance(doc.get("game_date"), str):
        found["game_date"] = doc["game_date"]
    message = str(doc.get("message", ""))
    if doc.get("exception"):
        message += "\n" + str(doc["exception"])
    severity = str(doc.get("severity") or "DEFAULT").upper()
    return LogEntry(
        time=_parse_time(doc.get("time") or doc.get("timestamp")),
        severity=severity if severity in RANK else "DEFAULT",
        message=message,
        labels=found,
        execution_id=str(doc["execution_id"]) if doc.get("execution_id") else None,
    )


def parse_log_lines(lines: Sequence[str]) -> list[LogEntry]:
    """A function's log file as entries, in file order: JSON lines, and runs of plain lines as one entry."""
    out: list[LogEntry] = []
    plain: list[str] = []
    last_time: datetime | None = None

    def flush() -> None:
        if plain:
            text = "\n".join(plain)
            severity = "ERROR" if TRACEBACK in text else "DEFAULT"
            out.append(LogEntry(last_time, severity, text))
            plain.clear()

    for line in lines:
        doc: Any = None
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except ValueError:
                doc = None
        if isinstance(doc, dict):
            flush()
            entry = _json_entry(doc)
            out.append(entry)
            last_time = entry.time or last_time
        elif line.strip():
            plain.append(line.rstrip())
    flush()
    return out


def select(
    entries: Sequence[LogEntry], *, since: datetime, severity: str | None, day: date | None, limit: int
) -> list[LogEntry]:
    """The last ``limit`` entries at or after ``since`` (an entry without a time is kept), at least
    ``severity``, labelled with ``day``; in time order."""
    floor = RANK[severity] if severity else 0
    wanted = day.isoformat() if day else None
    kept = [
        e
        for e in entries
        if (e.time is None or e.time >= since)
        and RANK.get(e.severity, 0) >= floor
        and (wanted is None or e.game_date == wanted)
    ]
    return kept[-limit:] if limit else kept


def read_local(
    log_dir: Path, function: str, *, since: datetime, severity: str | None, day: date | None, limit: int
) -> list[LogEntry]:
    path = log_dir / f"function-{function}.log"
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        raise UsageError(f"no log file {path} (has the local cloud started {function}?)") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    return select(parse_log_lines(text.splitlines()), since=since, severity=severity, day=day, limit=limit)


# -- pure: the Cloud Logging filter ----------------------------------------------------------------
def cloud_filter(function: str, since: datetime, severity: str | None = None, day: date | None = None) -> str:
    """The ``entries.list`` filter: the function's entries (its Cloud Run service, named with ``-``,
    or a Cloud Function of its name) since ``since``, at least ``severity``, labelled ``day``."""
    service = function.replace("_", "-")
    parts = [
        f'(resource.labels.service_name="{service}" OR resource.labels.function_name="{function}")',
        f'timestamp>="{rfc3339(since)}"',
    ]
    if severity:
        parts.append(f"severity>={severity}")
    if day is not None:
        parts.append(f'(labels.game_date="{day.isoformat()}" OR jsonPayload.game_date="{day.isoformat()}")')
    return " AND ".join(parts)


def cloud_entry(log: Any) -> LogEntry:
    """A ``google.cloud.logging`` entry as a ``LogEntry`` (a JSON payload's ``message``, else the text)."""
    payload = getattr(log, "payload", None)
    if isinstance(payload, Mapping):
        message = str(payload.get("message", json.dumps(dict(payload), default=str)))
        if payload.get("exception"):
            message += "\n" + str(payload["exception"])
    else:
        message = "" if payload is None else str(payload)
    labels = getattr(log, "labels", None) or {}
    severity = str(getattr(log, "severity", None) or "DEFAULT").upper()
    when = getattr(log, "timestamp", None)
    return LogEntry(
        time=when if isinstance(when, datetime) else None,
        severity=severity if severity in RANK else "DEFAULT",
        message=message,
        labels={str(k): str(v) for k, v in dict(labels).items()},
        execution_id=labels.get("execution_id") if isinstance(labels, Mapping) else None,
    )


def read_cloud(ctx: Context, flt: str, limit: int) -> list[LogEntry]:
    """One bounded ``entries.list`` (newest first), given up after ``--timeout``; returned oldest first."""
    try:
        from google.cloud import logging as cloud_logging  # type: ignore[attr-defined]
    except ImportError:
        raise UsageError(
            "reading Cloud Logging needs the google-cloud-logging package: pip install 'phasechain[cloud-logging]' "
            f"(or read local logs with --log-dir / ${LOG_DIR_ENV})"
        ) from None
    client = cloud_logging.Client(project=ctx.project)
    got: list[Any] = []
    failed: list[BaseException] = []

    def fetch() -> None:
        try:
            pages = client.list_entries(
                filter_=flt, order_by=cloud_logging.DESCENDING, max_results=limit, page_size=min(limit, 1000)
            )
            got.extend(pages)
        except Exception as exc:  # noqa: BLE001 — re-raised in the caller's thread
            failed.append(exc)

    worker = threading.Thread(target=fetch, name="phasectl-logs", daemon=True)
    worker.start()
    worker.join(ctx.timeout)
    if worker.is_alive():
        raise UsageError(f"Cloud Logging did not answer within {ctx.timeout:g} s (raise --timeout)")
    if failed:
        raise failed[0]
    return [cloud_entry(log) for log in reversed(got)]


# -- output ----------------------------------------------------------------------------------------
def render_text(entries: Sequence[LogEntry], head: str, times: TimeView) -> str:
    out = [head, ""]
    if not entries:
        out.append("no entries")
    for e in entries:
        when = times.stamp(e.time, seconds=True, missing="(start-up, no time)")
        first, *rest = e.message.splitlines() or [""]
        where = f" [{e.game_date}]" if e.game_date else ""
        out.append(f"{when}  {e.severity:<8} {first}{where}")
        out += [f"    {line}" for line in rest]
    return "\n".join(out)


_limit = bounded_int("entry count", LIMIT_MAX)


def _severity(value: str) -> str:
    upper = value.strip().upper()
    if upper not in RANK:
        raise argparse.ArgumentTypeError(f"invalid --severity {value!r}: one of {', '.join(SEVERITIES)}")
    return upper


def add_parser(sub: Any) -> None:
    """``phasectl logs --function F [--date D] [--severity S] [--since 1h] [--limit N] [--log-dir DIR] [--json]``."""
    p = sub.add_parser(
        "logs",
        help="one function's log entries (local cloud: its log file; Google Cloud: Cloud Logging)",
        epilog=epilog(
            ("To see the last hour of the first transition's log", "phasectl logs --function phase2_to_phase3"),
            (
                "To see the warnings and errors about one night over the last two days",
                "phasectl logs --function phase2_to_phase3 --date 2026-01-24 --severity WARNING --since 2d",
            ),
            ("To get the monitor's last 20 entries as JSON", "phasectl logs --function phase_transition_monitor "
             "--limit 20 --json"),
        ),
    )  # fmt: skip
    p.add_argument("--function", required=True, metavar="F", help="the function, e.g. phase2_to_phase3")
    p.add_argument("--date", help="only entries labelled with this game date (YYYY-MM-DD or TODAY/YESTERDAY)")
    p.add_argument(
        "--severity", type=_severity, metavar="S", help=f"this severity and above, one of: {', '.join(SEVERITIES)}"
    )
    p.add_argument("--since", default="1h", help="how far back: a duration like 30m, 1h or 2d (default 1h)")
    p.add_argument(
        "--limit",
        type=_limit,
        default=LIMIT_DEFAULT,
        metavar="N",
        help=f"the last N entries (default {LIMIT_DEFAULT}, at most {LIMIT_MAX})",
    )
    p.add_argument("--log-dir", help=f"the local cloud's function logs (default ${LOG_DIR_ENV})")
    p.add_argument("--json", action="store_true", help="print the entries as JSON instead of text")
    p.set_defaults(func=cmd_logs)


def known_function(ctx: Context, name: str) -> str:
    """``name`` as a function of the definition (``phase2-to-phase3`` accepted); unknown: the known ones."""
    names = list(ctx.definition.function_names())
    candidate = name.strip().replace("-", "_")
    if candidate in names:
        return candidate
    close = difflib.get_close_matches(candidate, names, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UsageError(f"unknown function {name!r}: {hint}known: {', '.join(names)}")


def cmd_logs(ctx: Context, args: argparse.Namespace) -> int:
    from phasectl.commands.health import parse_since

    function = known_function(ctx, args.function)
    window = parse_since(args.since)
    day = _date(ctx, args.date) if args.date else None
    log_dir = args.log_dir or ctx.env.get(LOG_DIR_ENV)
    if log_dir:
        if not Path(log_dir).is_dir():
            raise UsageError(f"log directory {log_dir!r} does not exist")
        # on the local cloud the functions stamp their lines with the same simulated clock as ctx's
        now = ctx.now()
        since = now - window
        entries = read_local(Path(log_dir), function, since=since, severity=args.severity, day=day, limit=args.limit)
        source = f"{Path(log_dir) / f'function-{function}.log'}"
    elif ctx.env.get("FIRESTORE_EMULATOR_HOST"):
        raise UsageError(f"local emulators in use: give the function log directory with --log-dir or ${LOG_DIR_ENV}")
    else:
        now = ctx.now()
        since = now - window
        entries = read_cloud(ctx, cloud_filter(function, since, args.severity, day), args.limit)
        source = f"Cloud Logging, project {ctx.project}"
    if args.json:
        ctx.dump(
            {
                "version": JSON_VERSION,
                "command": "logs",
                "function": function,
                "source": source,
                "now": iso(now),
                "since": iso(since),
                "severity": args.severity,
                "date": iso(day),
                "entries": [e.as_dict() for e in entries],
            }
        )
        return 0
    scope = "".join(
        [f", severity ≥ {args.severity}" if args.severity else "", f", game date {day.isoformat()}" if day else ""]
    )
    head = (
        f"phasectl logs — {function}: the last {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} since "
        f"{ctx.times.stamp(since)} ({args.since}{scope}) from {source}"
    )
    ctx.print(render_text(entries, head, ctx.times))
    return 0
