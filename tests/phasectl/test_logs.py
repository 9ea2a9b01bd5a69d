"""``phasectl logs``: a function's log file as the local cloud writes it, and the Cloud Logging filter."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from phasectl import main
from phasectl.commands.logs import cloud_filter, parse_log_lines, select
from shared import structured_log
from shared.clock import FixedClock

NOW = "2026-01-25T15:00:00Z"


def _write_function_log(path: Path) -> None:
    """What ``deploy.local.functions`` captures: the server's plain output and the structured JSON lines
    (``shared.structured_log``, the functions' own formatter) on one stream."""
    clock = FixedClock(datetime(2026, 1, 25, 13, 0, tzinfo=UTC))
    log = structured_log.get_logger("tests.phasectl.logs")
    with path.open("w") as stream:
        stream.write("[2026-01-25 08:00:00 -0500] [1234] [INFO] Starting gunicorn 23.0.0\n")
        structured_log.configure(stream=stream, clock=clock)
        try:
            log.info("old news")  # 13:00Z: outside --since 1h
            clock.set(datetime(2026, 1, 25, 14, 10, tzinfo=UTC))
            with structured_log.log_context(function="phase2_to_phase3", execution_id="e1"):
                with structured_log.log_context(transition="phase2_to_phase3", game_date="2026-01-24"):
                    log.info("completion recorded")
                    clock.set(datetime(2026, 1, 25, 14, 20, tzinfo=UTC))
                    log.warning("gate game_coverage ALERT 85.7%")
                with structured_log.log_context(game_date="2026-01-23"):
                    clock.set(datetime(2026, 1, 25, 14, 30, tzinfo=UTC))
                    try:
                        raise RuntimeError("boom <b>")
                    except RuntimeError:
                        log.exception("publish failed")
            stream.flush()
            stream.write("Traceback (most recent call last):\n  File \"main.py\", line 1\nKeyError: 'x'\n")
            clock.set(datetime(2026, 1, 25, 14, 40, tzinfo=UTC))
            log.info("still serving")
        finally:
            structured_log.reset_configuration()


def _run(*args: str, log_dir: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = {"PHASECTL_NOW": NOW, "GOOGLE_CLOUD_PROJECT": "p", "PHASECTL_LOG_DIR": str(log_dir)}
    code = main(["logs", *args], environ=env, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    _write_function_log(tmp_path / "function-phase2_to_phase3.log")
    return tmp_path


def test_a_real_format_file_parses_into_entries(log_dir: Path) -> None:
    entries = parse_log_lines((log_dir / "function-phase2_to_phase3.log").read_text().splitlines())
    assert [(e.severity, e.message.splitlines()[0]) for e in entries] == [
        ("DEFAULT", "[2026-01-25 08:00:00 -0500] [1234] [INFO] Starting gunicorn 23.0.0"),
        ("INFO", "old news"),
        ("INFO", "completion recorded"),
        ("WARNING", "gate game_coverage ALERT 85.7%"),
        ("ERROR", "publish failed"),
        ("ERROR", "Traceback (most recent call last):"),  # the plain traceback: one entry, an error
        ("INFO", "still serving"),
    ]
    banner, _, recorded, _, failed, traceback, _ = entries
    assert banner.time is None
    assert recorded.game_date == "2026-01-24" and recorded.execution_id == "e1"
    assert "RuntimeError: boom <b>" in failed.message  # the exception's text is part of the entry
    assert traceback.time == failed.time and traceback.message.endswith("KeyError: 'x'")
    since = datetime(2026, 1, 25, 14, 0, tzinfo=UTC)
    assert next(e.message for e in select(entries, since=since, severity="WARNING", day=None, limit=100)) == (
        "gate game_coverage ALERT 85.7%"
    )
    last = select(entries, since=since, severity=None, day=None, limit=2)
    assert [e.message.splitlines()[0] for e in last] == ["Traceback (most recent call last):", "still serving"]


def test_the_command_filters_by_window_severity_and_date(log_dir: Path) -> None:
    code, out, err = _run("--function", "phase2_to_phase3", log_dir=log_dir)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("phasectl logs — phase2_to_phase3: the last 6 entries since 2026-01-25 09:00 ET (1h)")
    assert "old news" not in out  # 13:00Z is before 14:00Z
    assert "(start-up, no time)  DEFAULT  [2026-01-25 08:00:00 -0500]" in out  # start-up output is always shown
    assert "2026-01-25 09:20:00 ET  WARNING  gate game_coverage ALERT 85.7% [2026-01-24]" in out
    assert "    RuntimeError: boom <b>" in out

    code, out, _ = _run("--function", "phase2-to-phase3", "--date", "2026-01-24", "--json", log_dir=log_dir)
    data = json.loads(out)
    assert code == 0 and data["function"] == "phase2_to_phase3"
    assert [e["message"] for e in data["entries"]] == ["completion recorded", "gate game_coverage ALERT 85.7%"]
    assert data["entries"][0]["labels"]["transition"] == "phase2_to_phase3"

    code, out, _ = _run("--function", "phase2_to_phase3", "--severity", "error", "--since", "3h", log_dir=log_dir)
    assert code == 0
    assert [line.split("  ")[1].strip() for line in out.splitlines()[2:] if line[:1] != " "] == ["ERROR", "ERROR"]


def test_unknown_function_bad_severity_and_missing_file(log_dir: Path) -> None:
    code, _, err = _run("--function", "phase2_to_phase4", log_dir=log_dir)
    assert code == 2 and err.count("\n") == 1
    assert (
        "did you mean phase3_to_phase4, phase2_to_phase3" in err and "known: phase2_to_phase3, phase3_to_phase4" in err
    )
    code, _, err = _run("--function", "phase2_to_phase3", "--severity", "LOUD", log_dir=log_dir)
    assert code == 2 and "one of DEFAULT, DEBUG" in err
    code, _, err = _run("--function", "auto_retry_processor", log_dir=log_dir)
    assert code == 2 and "function-auto_retry_processor.log" in err


def test_cloud_logging_filter() -> None:
    since = datetime(2026, 1, 25, 14, 0, tzinfo=UTC)
    assert cloud_filter("phase2_to_phase3", since) == (
        '(resource.labels.service_name="phase2-to-phase3" OR resource.labels.function_name="phase2_to_phase3") '
        'AND timestamp>="2026-01-25T14:00:00Z"'
    )
    full = cloud_filter("phase_transition_monitor", since, "WARNING", date(2026, 1, 24))
    assert full.endswith(
        ' AND severity>=WARNING AND (labels.game_date="2026-01-24" OR jsonPayload.game_date="2026-01-24")'
    )
    assert 'resource.labels.service_name="phase-transition-monitor"' in full
