"""Tests for shared.structured_log: Cloud Logging JSON lines, context isolation, trace headers."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.clock import FixedClock
from shared.structured_log import (
    LABELS_KEY,
    SOURCE_LOCATION_KEY,
    SPAN_KEY,
    TRACE_KEY,
    CloudJsonFormatter,
    TraceContext,
    configure,
    current_context,
    format_trace,
    get_logger,
    log_context,
    parse_trace_header,
    reset_configuration,
)

TRACE_ID = "105445aa7843bc8bf206b12000100000"
RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    configure(stream=buffer, level=logging.DEBUG)
    try:
        yield buffer
    finally:
        reset_configuration()


@pytest.fixture
def log() -> logging.Logger:
    return get_logger(f"test.structured_log.{uuid.uuid4().hex}")


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    text = buffer.getvalue()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def one(buffer: io.StringIO) -> dict[str, Any]:
    entries = lines(buffer)
    assert len(entries) == 1, entries
    return entries[0]


# ----------------------------------------------------------------------------- basic shape


def test_one_json_object_per_line_with_core_fields(stream: io.StringIO, log: logging.Logger) -> None:
    log.info("hello %s", "world")
    log.warning("second\nline")  # a newline in the message must not split the JSON line
    first, second = lines(stream)
    assert first["severity"] == "INFO"
    assert first["message"] == "hello world"
    assert first["logger"] == log.name
    assert RFC3339_UTC.fullmatch(first["time"])
    assert second["message"] == "second\nline"
    assert LABELS_KEY not in first and TRACE_KEY not in first and "execution_id" not in first
    location = first[SOURCE_LOCATION_KEY]
    assert location["function"] == "test_one_json_object_per_line_with_core_fields"
    assert location["file"].endswith("test_structured_log.py")


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        (logging.DEBUG, "DEBUG"),
        (logging.INFO, "INFO"),
        (logging.WARNING, "WARNING"),
        (logging.ERROR, "ERROR"),
        (logging.CRITICAL, "CRITICAL"),
        (5, "DEBUG"),
        (25, "INFO"),
        (45, "ERROR"),
    ],
)
def test_severity_mapping(stream: io.StringIO, log: logging.Logger, level: int, severity: str) -> None:
    log.setLevel(1)
    log.log(level, "x")
    assert one(stream)["severity"] == severity


def test_time_comes_from_the_injected_clock(stream: io.StringIO, log: logging.Logger) -> None:
    clock = FixedClock(datetime(2026, 1, 25, 2, 0, 0, 123456, tzinfo=UTC))
    configure(clock=clock)
    log.info("x")
    clock.advance(seconds=1)
    log.info("y")
    assert [entry["time"] for entry in lines(stream)] == [
        "2026-01-25T02:00:00.123456Z",
        "2026-01-25T02:00:01.123456Z",
    ]


def test_time_defaults_to_record_creation_in_utc(stream: io.StringIO, log: logging.Logger) -> None:
    before = datetime.now(UTC)
    log.info("x")
    after = datetime.now(UTC)
    stamp = datetime.fromisoformat(one(stream)["time"])
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert before.replace(microsecond=0) <= stamp <= after


def test_default_level_is_info(log: logging.Logger) -> None:
    buffer = io.StringIO()
    configure(stream=buffer)
    try:
        log.debug("hidden")
        log.info("shown")
    finally:
        reset_configuration()
    assert [entry["message"] for entry in lines(buffer)] == ["shown"]


def test_level_can_be_named(stream: io.StringIO, log: logging.Logger) -> None:
    configure(level="warning")
    log.info("hidden")
    log.warning("shown")
    assert [entry["message"] for entry in lines(stream)] == ["shown"]
    with pytest.raises(ValueError, match="unknown log level"):
        configure(level="LOUD")


def test_default_stream_is_the_current_stdout(log: logging.Logger, capsys: pytest.CaptureFixture[str]) -> None:
    reset_configuration()
    log.info("to stdout")
    out = capsys.readouterr().out
    assert json.loads(out)["message"] == "to stdout"


# ----------------------------------------------------------------------------- labels, fields, context


def test_extra_labels_and_fields(stream: io.StringIO, log: logging.Logger) -> None:
    log.info(
        "done",
        extra={
            "labels": {"function": "phase3_to_phase4", "attempt": 2},
            "fields": {"processors": ["a", "b"], "count": 5, "ok": True},
        },
    )
    entry = one(stream)
    assert entry[LABELS_KEY] == {"function": "phase3_to_phase4", "attempt": "2"}
    assert entry["processors"] == ["a", "b"]
    assert entry["count"] == 5
    assert entry["ok"] is True


def test_fields_cannot_overwrite_reserved_keys(stream: io.StringIO, log: logging.Logger) -> None:
    log.info("real", extra={"fields": {"message": "fake", "severity": "DEBUG", "other": 1}})
    entry = one(stream)
    assert entry["message"] == "real"
    assert entry["severity"] == "INFO"
    assert entry["fields.message"] == "fake"
    assert entry["fields.severity"] == "DEBUG"
    assert entry["other"] == 1


def test_log_context_binds_labels_execution_id_and_trace(stream: io.StringIO, log: logging.Logger) -> None:
    trace = format_trace("nba-props", f"{TRACE_ID}/1;o=1")
    with log_context(
        function="phase3_to_phase4",
        game_date="2026-01-24",
        execution_id="exec-1",
        trace=trace,
        span_id="0000000000000001",
    ):
        log.info("inside", extra={"labels": {"transition": "3->4"}})
    log.info("outside")
    inside, outside = lines(stream)
    assert inside[LABELS_KEY] == {
        "function": "phase3_to_phase4",
        "game_date": "2026-01-24",
        "transition": "3->4",
    }
    assert inside["execution_id"] == "exec-1"
    assert inside[TRACE_KEY] == f"projects/nba-props/traces/{TRACE_ID}"
    assert inside[SPAN_KEY] == "0000000000000001"
    assert LABELS_KEY not in outside
    assert "execution_id" not in outside and TRACE_KEY not in outside


def test_nested_contexts_merge_and_restore(stream: io.StringIO, log: logging.Logger) -> None:
    with log_context(function="f", game_date="2026-01-24", execution_id="outer"):
        with log_context(game_date="2026-01-25", transition="4->5"):
            assert current_context()["labels"] == {
                "function": "f",
                "game_date": "2026-01-25",
                "transition": "4->5",
            }
            log.info("inner")
        log.info("outer")
    assert current_context() == {"labels": {}, "execution_id": None, "trace": None, "span_id": None}
    inner, outer = lines(stream)
    assert inner[LABELS_KEY] == {"function": "f", "game_date": "2026-01-25", "transition": "4->5"}
    assert inner["execution_id"] == "outer"
    assert outer[LABELS_KEY] == {"function": "f", "game_date": "2026-01-24"}


def test_context_is_restored_after_an_exception() -> None:
    with pytest.raises(RuntimeError), log_context(function="f"):
        raise RuntimeError("boom")
    assert current_context()["labels"] == {}


def test_record_extra_overrides_context_execution_id(stream: io.StringIO, log: logging.Logger) -> None:
    with log_context(execution_id="ctx"):
        log.info("x", extra={"execution_id": "record"})
    assert one(stream)["execution_id"] == "record"


def test_concurrent_threads_do_not_mix_context(stream: io.StringIO, log: logging.Logger) -> None:
    workers = 8
    barrier = threading.Barrier(workers)

    def request(index: int) -> None:
        with log_context(request=str(index), execution_id=f"exec-{index}"):
            barrier.wait()  # every thread is inside its own context at once
            for _ in range(20):
                log.info("working", extra={"fields": {"index": index}})

    threads = [threading.Thread(target=request, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = lines(stream)  # also proves no interleaved (broken) lines
    assert len(entries) == workers * 20
    for entry in entries:
        assert entry[LABELS_KEY] == {"request": str(entry["index"])}
        assert entry["execution_id"] == f"exec-{entry['index']}"


# ----------------------------------------------------------------------------- robustness


def test_exception_is_serialised_with_severity(stream: io.StringIO, log: logging.Logger) -> None:
    try:
        raise ValueError("bad game id 0022500644")
    except ValueError:
        log.exception("transition failed")
    entry = one(stream)
    assert entry["severity"] == "ERROR"
    assert entry["message"] == "transition failed"
    assert "Traceback (most recent call last)" in entry["exception"]
    assert "ValueError: bad game id 0022500644" in entry["exception"]


def test_exc_info_on_warning_keeps_warning_severity(stream: io.StringIO, log: logging.Logger) -> None:
    try:
        raise KeyError("k")
    except KeyError:
        log.warning("retrying", exc_info=True)
    entry = one(stream)
    assert entry["severity"] == "WARNING"
    assert "KeyError" in entry["exception"]


def test_stack_info_is_included(stream: io.StringIO, log: logging.Logger) -> None:
    log.info("where", stack_info=True)
    assert "test_stack_info_is_included" in one(stream)["stack"]


class _Opaque:
    def __str__(self) -> str:
        return "<opaque thing>"


def test_non_json_serialisable_extras_do_not_crash(stream: io.StringIO, log: logging.Logger) -> None:
    when = datetime(2026, 1, 24, 12, 0, tzinfo=UTC)
    log.info("x", extra={"fields": {"obj": _Opaque(), "when": when, "tags": {"a"}, "pair": (1, 2)}})
    entry = one(stream)
    assert entry["obj"] == "<opaque thing>"
    assert entry["when"] == "2026-01-24T12:00:00.000000Z"
    assert entry["tags"] == ["a"]
    assert entry["pair"] == [1, 2]


def test_unserialisable_structures_still_produce_a_line(stream: io.StringIO, log: logging.Logger) -> None:
    circular: dict[str, Any] = {}
    circular["self"] = circular
    log.error("still logged", extra={"fields": {"circular": circular, "tuple_keys": {(1, 2): "v"}}})
    entry = one(stream)
    assert entry["message"] == "still logged"
    assert entry["severity"] == "ERROR"
    assert "not JSON-serialisable" in entry["logging_error"]
    assert isinstance(entry["circular"], str)


def test_bad_format_args_do_not_lose_the_line() -> None:
    # Formatter tested directly: pytest's own capture handler (attached to non-propagating
    # loggers since pytest 8) raises on such records by design.
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d items", ("not-a-number",), None)
    entry = json.loads(CloudJsonFormatter().format(record))
    assert entry["message"].startswith("%d items")
    assert "not-a-number" in entry["message"]
    assert entry["severity"] == "INFO"


def test_non_ascii_is_kept(stream: io.StringIO, log: logging.Logger) -> None:
    log.info("Dončić scored")
    assert "Dončić" in stream.getvalue()
    assert one(stream)["message"] == "Dončić scored"


# ----------------------------------------------------------------------------- handler setup


def test_get_logger_is_idempotent_and_does_not_propagate(stream: io.StringIO) -> None:
    name = f"test.idempotent.{uuid.uuid4().hex}"
    first = get_logger(name)
    second = get_logger(name)
    assert first is second
    ours = [h for h in first.handlers if type(h).__module__ == "shared.structured_log"]
    assert len(ours) == 1
    assert first.propagate is False
    first.info("once")
    assert len(lines(stream)) == 1


def test_nothing_reaches_the_root_logger(stream: io.StringIO, log: logging.Logger) -> None:
    root_buffer = io.StringIO()
    root_handler = logging.StreamHandler(root_buffer)
    logging.getLogger().addHandler(root_handler)
    try:
        log.warning("only once")
    finally:
        logging.getLogger().removeHandler(root_handler)
    assert root_buffer.getvalue() == ""
    assert len(lines(stream)) == 1


def test_configure_applies_to_existing_loggers(log: logging.Logger) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure(stream=first)
    try:
        log.info("a")
        configure(stream=second)
        log.info("b")
    finally:
        reset_configuration()
    assert [e["message"] for e in lines(first)] == ["a"]
    assert [e["message"] for e in lines(second)] == ["b"]


def test_writing_failure_is_reported_not_raised(
    log: logging.Logger, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Broken(io.StringIO):
        def write(self, s: str) -> int:
            raise OSError("disk full")

    monkeypatch.setattr(logging, "raiseExceptions", True)
    configure(stream=Broken())
    try:
        log.info("lost")  # must not raise
    finally:
        reset_configuration()
    assert "OSError: disk full" in capsys.readouterr().err
    assert sys.stdout is not None


# ----------------------------------------------------------------------------- trace headers


@pytest.mark.parametrize(
    "header",
    [
        f"{TRACE_ID}/1;o=1",
        f"{TRACE_ID}/1",
        f"{TRACE_ID};o=0",
        TRACE_ID,
        TRACE_ID.upper() + "/123",
        f"X-Cloud-Trace-Context: {TRACE_ID}/1;o=1",
        f"00-{TRACE_ID}-00f067aa0ba902b7-01",
        f"traceparent: 00-{TRACE_ID}-00f067aa0ba902b7-00",
        f" 00-{TRACE_ID.upper()}-00F067AA0BA902B7-01 ",
    ],
)
def test_format_trace_accepts_both_header_formats(header: str) -> None:
    assert format_trace("nba-props", header) == f"projects/nba-props/traces/{TRACE_ID}"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "not-a-trace",
        "105445aa7843bc8bf206b1200010000/1;o=1",  # 31 hex digits
        "0" * 32 + "/1;o=1",  # all-zero trace id
        f"ff-{TRACE_ID}-00f067aa0ba902b7-01",  # forbidden version
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
        f"00-{TRACE_ID}-0000000000000000-01",  # all-zero span id
        f"00-{TRACE_ID}-00f067aa0ba902b-01",  # short span id
        f"{TRACE_ID}/abc;o=1",
    ],
)
def test_format_trace_rejects_invalid_headers(header: str | None) -> None:
    assert format_trace("nba-props", header) is None


def test_format_trace_needs_a_project() -> None:
    assert format_trace("", f"{TRACE_ID}/1;o=1") is None
    assert format_trace(None, f"{TRACE_ID}/1;o=1") is None


def test_parse_trace_header_details() -> None:
    assert parse_trace_header(f"{TRACE_ID}/255;o=1") == TraceContext(TRACE_ID, "00000000000000ff", True)
    assert parse_trace_header(f"{TRACE_ID};o=0") == TraceContext(TRACE_ID, None, False)
    assert parse_trace_header(TRACE_ID) == TraceContext(TRACE_ID, None, None)
    assert parse_trace_header(f"00-{TRACE_ID}-00f067aa0ba902b7-01") == TraceContext(TRACE_ID, "00f067aa0ba902b7", True)
    assert parse_trace_header(f"00-{TRACE_ID}-00f067aa0ba902b7-00") == TraceContext(TRACE_ID, "00f067aa0ba902b7", False)
    # A span id of 0 or beyond 64 bits is dropped, the trace id kept.
    assert parse_trace_header(f"{TRACE_ID}/0;o=1") == TraceContext(TRACE_ID, None, True)
    assert parse_trace_header(f"{TRACE_ID}/{2**64};o=1") == TraceContext(TRACE_ID, None, True)


def test_every_alert_line_carries_its_runbook_link(
    stream: io.StringIO, log: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16: an ``alert`` label (logged by any function) gets ``runbook`` = its section's link."""
    from shared.structured_log import RUNBOOK_URL_ENV

    monkeypatch.delenv(RUNBOOK_URL_ENV, raising=False)
    log.warning("nudge failed", extra={"labels": {"alert": "outbox_nudge_failed"}})
    log.warning("plain line")
    log.error("own link kept", extra={"labels": {"alert": "stuck", "runbook": "https://x.example/r#stuck"}})
    monkeypatch.setenv(RUNBOOK_URL_ENV, "https://x.example/ops.md#old")
    log.error("hosted", extra={"labels": {"alert": "stale_event"}})
    labels = [line.get("logging.googleapis.com/labels", {}) for line in lines(stream)]
    assert labels[0]["runbook"] == "docs/operations.md#outbox_nudge_failed"
    assert "runbook" not in labels[1]
    assert labels[2]["runbook"] == "https://x.example/r#stuck"
    assert labels[3]["runbook"] == "https://x.example/ops.md#stale_event"


def test_a_process_on_the_simulated_clock_stamps_its_lines_with_it() -> None:
    """On the local cloud the functions' log lines carry the simulated time, so `phasectl logs` and
    `health` (which read "now" from the same clock) show them on one time axis (issue 28: a
    2026-01-25 header next to a 2026-12-07 LAST ERROR AT)."""

    from shared.clock import SIMULATED_CLOCK_ENV

    start = datetime(2026, 1, 25, 7, 30, tzinfo=UTC)
    env = {**os.environ, SIMULATED_CLOCK_ENV: f"{start.isoformat()}|{time.time():.6f}|1"}
    code = "from shared.structured_log import get_logger; get_logger('t').warning('hello')"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    (line,) = [json.loads(x) for x in done.stdout.splitlines() if x.strip()]
    stamped = datetime.fromisoformat(line["time"].replace("Z", "+00:00"))
    assert start <= stamped < start + timedelta(minutes=5), line["time"]
