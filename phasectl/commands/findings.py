"""``phasectl findings [--json] [--ack KEY --note TEXT | --unack KEY]``: the monitor's active findings.

Each finding is one document of the monitor's alert collection (``[monitor] alert_collection``),
written by ``shared.monitor.alerts.AlertManager`` while it fires: severity, kind, date, transition,
message, first seen, the runbook link and the exact ``phasectl`` command that fixes or inspects it.
``--ack`` records who acknowledged it, when and why on that document (audited): it stays listed,
shown as acknowledged and sorted after the unacknowledged ones of its severity; the monitor's
re-alerts keep the acknowledgement (Slack says who has it), and it ends with the document when the
finding resolves. ``--unack`` removes it.

Exit codes: 0 when every active ERROR or CRITICAL finding is acknowledged (or none is active); 1
when one is not (a problem nobody has taken); 2 for bad input (an unknown or ambiguous key).
``--ack``/``--unack``: 0 done, 1 nothing changed (``--unack`` of a finding nobody acknowledged).

``status_findings_lines`` is what ``phasectl status`` (text) prints under its report: the date's
findings with their command and runbook, and a count of the others.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from phasectl.core import Context, UsageError, _user, iso

if TYPE_CHECKING:
    from phasectl.status_html import ActiveFinding
    from phasectl.timefmt import TimeView

KEY_PREFIX_MIN = 6  # as `retry resolve`: a prefix of at least 6 characters names a finding
ALARMING = ("CRITICAL", "ERROR")  # unacknowledged, these make `findings` exit 1
_RANK = {"CRITICAL": 0, "ERROR": 1, "WARNING": 2, "INFO": 3}


def add_parser(sub: Any, parser_class: Any) -> None:
    """``phasectl findings`` under ``sub`` (phasectl's subcommands)."""
    p = sub.add_parser(
        "findings",
        help="the monitor's active findings with their runbook and fix command; acknowledge one (audited)",
    )
    action = p.add_mutually_exclusive_group()
    action.add_argument("--ack", metavar="KEY", help="acknowledge this finding (its key, or a prefix of ≥ 6 chars)")
    action.add_argument("--unack", metavar="KEY", help="remove the acknowledgement of this finding")
    p.add_argument("--note", help="with --ack: why, what you are doing (kept on the finding and in the audit)")
    p.add_argument("--json", action="store_true", help="print the findings as JSON instead of text")
    p.set_defaults(func=cmd_findings)


# -- reading -------------------------------------------------------------------------------------
def ordered(findings: Iterable[ActiveFinding]) -> list[ActiveFinding]:
    """Most severe first; within a severity the unacknowledged first; then by key."""
    return sorted(findings, key=lambda f: (_RANK.get(f.severity, len(_RANK)), f.acked_by is not None, f.key))


def active_findings(ctx: Context) -> list[ActiveFinding]:
    from phasectl.status_html import ActiveFinding

    collection = ctx.firestore().collection(ctx.definition.monitor.alert_collection)
    return ordered(ActiveFinding.from_doc(d.id, d.to_dict() or {}) for d in collection.stream(timeout=ctx.timeout))


def unacknowledged_alarms(findings: Iterable[ActiveFinding]) -> list[ActiveFinding]:
    return [f for f in findings if f.severity in ALARMING and not f.acked_by]


def _match(findings: Sequence[ActiveFinding], wanted: str) -> ActiveFinding:
    """The finding whose key is ``wanted``, or starts with it (at least 6 characters, unambiguous)."""
    wanted = wanted.strip()
    exact = [f for f in findings if f.key == wanted]
    if exact:
        return exact[0]
    if len(wanted) < KEY_PREFIX_MIN:
        raise UsageError(f"finding key {wanted!r} is too short (give at least {KEY_PREFIX_MIN} characters)")
    matches = [f for f in findings if f.key.startswith(wanted)]
    if not matches:
        raise UsageError(f"no active finding {wanted!r} (`phasectl findings` lists them)")
    if len(matches) > 1:
        keys = ", ".join(f.key for f in matches[:5]) + (" …" if len(matches) > 5 else "")
        raise UsageError(f"finding key {wanted!r} is ambiguous ({len(matches)} findings: {keys})")
    return matches[0]


# -- showing -------------------------------------------------------------------------------------
def finding_lines(f: ActiveFinding, times: TimeView) -> list[str]:
    """One finding as text: what, where, since when; its message; fix command, runbook, acknowledgement."""
    where = " ".join(x for x in (f.game_date, f.transition) if x)
    head = f"{f.severity} {f.kind}" + (f" {where}" if where else "")
    since = f" (first seen {times.stamp(f.first_seen_at)})" if f.first_seen_at else ""
    lines = [f"{head}{since}", f"  {f.text}", f"  fix:     {f.command or '-'}", f"  runbook: {f.runbook or '-'}"]
    if f.acked_by:
        note = f": {f.ack_note}" if f.ack_note else ""
        lines.append(f"  acknowledged by {f.acked_by} at {times.stamp(f.acked_at)}{note}")
    lines.append(f"  key:     {f.key}")
    return lines


def status_findings_json(ctx: Context, day: date) -> dict[str, Any]:
    """``status --json``'s ``findings``: the date's active findings (as ``findings --json`` has them), or
    why they could not be read (the report stands without them)."""
    try:
        findings = active_findings(ctx)
    except Exception as exc:  # noqa: BLE001 — the report stands; this says why its findings are missing
        return {"unread": f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"}
    mine = ordered(f for f in findings if f.game_date == day.isoformat())
    return {"date": [_as_dict(f) for f in mine], "other_dates": len(findings) - len(mine)}


def _as_dict(f: ActiveFinding) -> dict[str, Any]:
    return {
        "key": f.key,
        "kind": f.kind,
        "severity": f.severity,
        "message": f.message,
        "transition": f.transition,
        "game_date": f.game_date,
        "first_seen_at": iso(f.first_seen_at),
        "runbook": f.runbook,
        "command": f.command,
        "acknowledged": f.acked_by is not None,
        "acked_by": f.acked_by,
        "acked_at": iso(f.acked_at),
        "ack_note": f.ack_note,
    }


def status_findings_lines(findings: Sequence[ActiveFinding], day: date, times: TimeView) -> list[str]:
    """What ``phasectl status`` prints under its report: the date's active findings, each with its fix
    command and runbook, and how many others are active (``phasectl findings`` lists them all)."""
    mine = ordered(f for f in findings if f.game_date == day.isoformat())
    others = len(findings) - len(mine)
    lines = ["", f"active findings for {day} ({len(mine)}):" if mine else f"active findings for {day}: none"]
    for f in mine:
        lines += ["  " + line for line in finding_lines(f, times)]
    if others:
        lines.append(f"{others} other active finding(s) (other dates, or none): phasectl findings")
    return lines


def print_status_findings(ctx: Context, day: date) -> None:
    """``status``'s findings section; fails soft: one line when the alert collection cannot be read."""
    try:
        findings = active_findings(ctx)
    except Exception as exc:  # noqa: BLE001 — the report above stands; this says why its findings are missing
        ctx.print(f"\nactive findings: not read ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})")
        return
    ctx.print("\n".join(status_findings_lines(findings, day, ctx.times)))


# -- the command ----------------------------------------------------------------------------------
def cmd_findings(ctx: Context, args: argparse.Namespace) -> int:
    if args.note is not None and args.ack is None:
        raise UsageError("--note applies to --ack only")
    if args.json and (args.ack or args.unack):
        raise UsageError("--json applies to the list only")
    if args.ack is not None:
        if not (args.note or "").strip():
            raise UsageError("--ack needs --note TEXT: why, or what you are doing about it")
        return _acknowledge(ctx, args.ack, args.note.strip())
    if args.unack is not None:
        return _unacknowledge(ctx, args.unack)
    findings = active_findings(ctx)
    alarms = unacknowledged_alarms(findings)
    if args.json:
        ctx.dump({"version": 1, "command": "findings", "findings": [_as_dict(f) for f in findings]})
        return 1 if alarms else 0
    now = ctx.now()
    acked = sum(1 for f in findings if f.acked_by)
    ctx.print(f"phasectl findings — {ctx.times.header_now(now)}")
    ctx.print(f"{len(findings)} active finding(s), {acked} acknowledged")
    for f in findings:
        ctx.print()
        ctx.print("\n".join(finding_lines(f, ctx.times)))
    if alarms:
        ctx.print()
        ctx.print(f"{len(alarms)} ERROR/CRITICAL finding(s) not acknowledged: phasectl findings --ack KEY --note TEXT")
    return 1 if alarms else 0


def _document(ctx: Context, key: str) -> Any:
    return ctx.firestore().collection(ctx.definition.monitor.alert_collection).document(key)


def _acknowledge(ctx: Context, wanted: str, note: str) -> int:
    from google.api_core import exceptions as gexc

    finding = _match(active_findings(ctx), wanted)
    who, now = ctx.env.get("USER") or _user(), ctx.now()
    try:  # update, not set: a finding that resolved meanwhile is not brought back
        _document(ctx, finding.key).update({"acked_by": who, "acked_at": now, "ack_note": note}, timeout=ctx.timeout)
    except gexc.NotFound:
        raise UsageError(f"finding {finding.key} resolved meanwhile: nothing to acknowledge") from None
    before = f" (was acknowledged by {finding.acked_by})" if finding.acked_by else ""
    ctx.audit("findings ack", {"key": finding.key, "kind": finding.kind, "note": note}, f"acknowledged{before}")
    ctx.print(f"{finding.key}: acknowledged by {who} at {ctx.times.stamp(now)}: {note}{before}")
    ctx.print("  it stays listed until it resolves; the monitor's re-alerts say who has it")
    if finding.command:
        ctx.print(f"  fix: {finding.command}")
    return 0


def _unacknowledge(ctx: Context, wanted: str) -> int:
    from google.api_core import exceptions as gexc
    from google.cloud import firestore

    finding = _match(active_findings(ctx), wanted)
    if not finding.acked_by:
        ctx.print(f"{finding.key} is not acknowledged: nothing to change")
        return 1
    fields = dict.fromkeys(("acked_by", "acked_at", "ack_note"), firestore.DELETE_FIELD)
    try:
        _document(ctx, finding.key).update(fields, timeout=ctx.timeout)
    except gexc.NotFound:
        raise UsageError(f"finding {finding.key} resolved meanwhile: nothing to change") from None
    ctx.audit("findings unack", {"key": finding.key, "kind": finding.kind}, f"was acknowledged by {finding.acked_by}")
    ctx.print(f"{finding.key}: acknowledgement by {finding.acked_by} removed")
    return 0
