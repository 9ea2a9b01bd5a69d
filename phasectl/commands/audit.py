"""``phasectl audit``: the operator audit (who ran which changing command, when, with what, and its result).

Every changing command writes one record through ``Context.audit`` to the Firestore collection
``[pipeline] audit_collection``: ``who``, ``when``, ``command``, ``args`` (dates as ISO text),
``result``, ``project``. This reads them newest first in one bounded query (``when`` at or after
``--since``, ordered by ``when`` descending, at most ``--limit``: one single-field index, no scan of
the collection) and, with ``--date``, keeps the records about that game date (``args.date``,
``args.game_date``, or a ``from``..``to`` range that holds it).

``AuditRecord.of``, ``about_date``, ``render_text`` and ``audit_json`` are pure.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from phasectl.argtypes import bounded_int
from phasectl.core import Context, _date, iso
from phasectl.timefmt import aware

if TYPE_CHECKING:
    from phasectl.timefmt import TimeView

JSON_VERSION = 1
LIMIT_DEFAULT = 200
LIMIT_MAX = 2000
DATE_KEYS = ("date", "game_date")


def epilog(*examples: tuple[str, str]) -> str:
    """An ``EXAMPLES:`` block as ``phasectl.help_text`` writes them (for a command's parser)."""
    lines = ["EXAMPLES:"]
    for description, command in examples:
        lines += [f"    {description}, run:", "", f"        $ {command}", ""]
    return "\n".join(lines).rstrip()


@dataclass(frozen=True)
class AuditRecord:
    id: str
    who: str
    when: datetime | None
    command: str
    args: Mapping[str, Any] = field(default_factory=dict)
    result: str = ""
    project: str | None = None

    @classmethod
    def of(cls, doc_id: str, doc: Mapping[str, Any]) -> AuditRecord:
        when = doc.get("when")
        args = doc.get("args")
        return cls(
            id=doc_id,
            who=str(doc.get("who") or "?"),
            when=aware(when) if isinstance(when, datetime) else None,
            command=str(doc.get("command") or "?"),
            args=dict(args) if isinstance(args, Mapping) else {},
            result=str(doc.get("result") or ""),
            project=str(doc["project"]) if doc.get("project") else None,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "who": self.who,
            "when": iso(self.when),
            "command": self.command,
            "args": {k: iso(v) for k, v in sorted(self.args.items())},
            "result": self.result,
            "project": self.project,
        }


def _day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def about_date(record: AuditRecord, day: date) -> bool:
    """Whether the record's arguments name ``day``: ``date``/``game_date``, or a ``from``..``to`` range."""
    if any(_day(record.args.get(key)) == day for key in DATE_KEYS):
        return True
    start, end = _day(record.args.get("from")), _day(record.args.get("to"))
    return start is not None and end is not None and start <= day <= end


def args_text(args: Mapping[str, Any], limit: int = 160) -> str:
    """``date=2026-01-24 processor=bdl_player_boxscores note='API back up'`` (one line, shortened)."""
    parts = []
    for key, value in sorted(args.items()):
        if value is None or value is False:
            continue
        shown = iso(value)
        text = str(shown)
        parts.append(f"{key}={text!r}" if isinstance(shown, str) and (" " in text or not text) else f"{key}={text}")
    joined = " ".join(parts) or "-"
    return joined if len(joined) <= limit else joined[: limit - 1] + "…"


def _short(text: str, limit: int = 160) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def render_text(
    records: Sequence[AuditRecord],
    now: datetime,
    since: datetime,
    since_text: str,
    day: date | None,
    truncated: bool,
    times: TimeView,
) -> str:
    from phasectl.report import format_table

    scope = f", game date {day.isoformat()}" if day else ""
    head = (
        f"phasectl audit — {len(records)} record(s) since {times.stamp(since)} ({since_text}){scope}, newest first; "
        f"{times.header_now(now)}"
    )
    out = [head, ""]
    if records:
        rows = [(times.stamp(r.when), r.who, r.command, args_text(r.args), _short(r.result)) for r in records]
        out.append(format_table((f"WHEN ({times.label})", "WHO", "COMMAND", "ARGS", "RESULT"), rows))
    else:
        out.append("no audited command in this window" + (" about this date" if day else ""))
    if truncated:
        out += ["", "the window holds more records than --limit read: raise --limit or shorten --since"]
    return "\n".join(out)


def audit_json(
    records: Sequence[AuditRecord], now: datetime, since: datetime, day: date | None, truncated: bool
) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "command": "audit",
        "now": iso(now),
        "since": iso(since),
        "date": iso(day),
        "truncated": truncated,
        "records": [r.as_dict() for r in records],
    }


# -- read ------------------------------------------------------------------------------------------
def read_records(ctx: Context, since: datetime, limit: int) -> tuple[list[AuditRecord], bool]:
    """The records from ``since`` on, newest first, at most ``limit`` (and whether more were there)."""
    from google.cloud import firestore
    from google.cloud.firestore_v1.base_query import FieldFilter

    collection = ctx.firestore().collection(ctx.definition.pipeline.audit_collection)
    query = (
        collection.where(filter=FieldFilter("when", ">=", since))
        .order_by("when", direction=firestore.Query.DESCENDING)
        .limit(limit + 1)
    )
    docs = list(query.stream(timeout=ctx.timeout))
    records = [AuditRecord.of(d.id, d.to_dict() or {}) for d in docs[:limit]]
    return records, len(docs) > limit


_limit = bounded_int("record count", LIMIT_MAX)


def add_parser(sub: Any) -> None:
    """``phasectl audit [--date D] [--since 7d] [--limit N] [--json]``."""
    p = sub.add_parser(
        "audit",
        help="the operator audit: who ran which changing command, when, with what arguments and result",
        epilog=epilog(
            ("To see the changes operators made in the last week, newest first", "phasectl audit"),
            (
                "To see what was done about one night, over the last month",
                "phasectl audit --date 2026-01-24 --since 30d",
            ),
            ("To get the records as JSON (for a script)", "phasectl audit --since 1d --json"),
        ),
    )
    p.add_argument("--date", help="only records about this game date (YYYY-MM-DD or TODAY/YESTERDAY)")
    p.add_argument("--since", default="7d", help="how far back: a duration like 12h, 7d or 30d (default 7d)")
    p.add_argument(
        "--limit",
        type=_limit,
        default=LIMIT_DEFAULT,
        metavar="N",
        help=f"read at most N records of the window, newest first (default {LIMIT_DEFAULT}, at most {LIMIT_MAX})",
    )
    p.add_argument("--json", action="store_true", help="print the records as JSON instead of a table")
    p.set_defaults(func=cmd_audit)


def cmd_audit(ctx: Context, args: argparse.Namespace) -> int:
    from phasectl.commands.health import parse_since

    window = parse_since(args.since)
    day = _date(ctx, args.date) if args.date else None
    now = ctx.now()
    since = now - window
    records, truncated = read_records(ctx, since, args.limit)
    if day is not None:
        records = [r for r in records if about_date(r, day)]
    if args.json:
        ctx.dump(audit_json(records, now, since, day, truncated))
    else:
        ctx.print(render_text(records, now, since, args.since, day, truncated, ctx.times))
    return 0
