"""``phasectl audit``'s pure parts: records from their documents, the date filter, the rendering."""

from __future__ import annotations

from datetime import UTC, date, datetime

from phasectl.commands.audit import AuditRecord, about_date, args_text, audit_json, render_text
from phasectl.timefmt import TimeView

TIMES = TimeView.of("America/New_York")
NOW = datetime(2026, 1, 25, 15, 0, tzinfo=UTC)
SINCE = datetime(2026, 1, 18, 15, 0, tzinfo=UTC)


def _record(command: str, args: dict[str, object], *, at: datetime = NOW, result: str = "ok") -> AuditRecord:
    doc = {"who": "ops", "when": at, "command": command, "args": args, "result": result, "project": "p"}
    return AuditRecord.of(f"id-{command}", doc)


def test_a_record_from_its_document_and_back_as_json() -> None:
    naive = datetime(2026, 1, 25, 14, 0)  # a stored time without zone is UTC
    r = AuditRecord.of("abc", {"when": naive, "command": "trigger", "args": {"date": "2026-01-24"}})
    assert r.when == datetime(2026, 1, 25, 14, 0, tzinfo=UTC) and r.who == "?" and r.result == ""
    broken = AuditRecord.of("x", {"when": "yesterday", "args": ["not", "a", "map"]})
    assert broken.when is None and broken.args == {} and broken.command == "?"
    data = audit_json([r], NOW, SINCE, date(2026, 1, 24), truncated=True)
    assert data["records"][0]["when"] == "2026-01-25T14:00:00+00:00" and data["truncated"] is True
    assert data["date"] == "2026-01-24"


def test_records_about_a_date() -> None:
    day = date(2026, 1, 24)
    assert about_date(_record("retry requeue", {"date": "2026-01-24", "processor": "bdl"}), day)
    assert about_date(_record("games postpone", {"game_date": "2026-01-24"}), day)
    assert about_date(_record("backfill", {"from": "2026-01-20", "to": "2026-01-24"}), day)
    assert not about_date(_record("backfill", {"from": "2026-01-25", "to": "2026-01-30"}), day)
    assert not about_date(_record("retry resolve", {"row_id": "abc"}), day)
    assert not about_date(_record("trigger", {"date": "not a date"}), day)


def test_text_is_newest_first_as_given_with_args_in_one_line() -> None:
    records = [
        _record("retry requeue", {"date": "2026-01-24", "processor": "bdl", "note": "API back up"}, result="1 row(s)"),
        _record("trigger", {"transition": "phase2_to_phase3", "date": "2026-01-24", "force": False},
                at=datetime(2026, 1, 25, 14, 0, tzinfo=UTC), result="triggered\nphase2_to_phase3:2026-01-24:g2"),
    ]  # fmt: skip
    text = render_text(records, NOW, SINCE, "7d", date(2026, 1, 24), truncated=False, times=TIMES)
    lines = text.splitlines()
    assert lines[0].startswith("phasectl audit — 2 record(s) since 2026-01-18 10:00 ET (7d), game date 2026-01-24")
    assert lines[2].split() == ["WHEN", "(ET)", "WHO", "COMMAND", "ARGS", "RESULT"]
    assert "2026-01-25 10:00 ET  ops  retry requeue  date=2026-01-24 note='API back up' processor=bdl" in lines[4]
    assert lines[5].startswith("2026-01-25 09:00 ET  ops  trigger")
    assert lines[5].endswith("triggered phase2_to_phase3:2026-01-24:g2")  # one line; force=False left out
    assert "force" not in lines[5]
    empty = render_text([], NOW, SINCE, "7d", None, truncated=True, times=TIMES)
    assert "no audited command in this window" in empty and "raise --limit" in empty


def test_args_text_is_shortened() -> None:
    assert args_text({}) == "-"
    long = args_text({"note": "x" * 500})
    assert len(long) == 160 and long.endswith("…")
