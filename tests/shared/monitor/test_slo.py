"""The SLO history computation (pure): generations, DST, nights without a trigger, percentiles, and
the monitor's slo_breach verdict on a date document's triggers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.errors import DefinitionError
from shared.monitor.slo import build_history, parse_trigger_id, percentile, triggers_by_night
from shared.monitor.slo_check import breach, state_triggers
from shared.orchestration.date_state import DateState
from shared.pipeline.definition import DEFAULT_DEFINITION_PATH, load_definition, parse_definition, read_definition

ET = ZoneInfo("America/New_York")


def _row(transition: str, day: date, at: datetime, *, gen: int = 1, status: str = "complete", **kw: Any) -> dict:
    mode = kw.pop("mode", None)
    trigger_id = f"{transition}:{day.isoformat()}:g{gen}" + (f":{mode}" if mode else "")
    return {
        "phase_name": transition,
        "game_date": day,
        "status": status,
        "trigger_id": trigger_id,
        "execution_timestamp": at,
        "duration_seconds": kw.pop("duration", 3600.0),
    }


def _et(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ET)


def test_the_definition_has_one_slo_per_transition_with_a_source() -> None:
    definition = load_definition()
    targets = {t.transition: t for t in definition.slo.targets}
    assert set(targets) == {t.name for t in definition.transitions}
    assert all(t.source for t in targets.values())
    assert targets["phase5_to_phase6"].describe() == "10:00 ET the morning after"
    assert targets["phase4_to_phase5"].describe() == "1 h before the first tip-off the day after"


def test_an_slo_naming_an_unknown_transition_or_mode_is_rejected() -> None:
    import tomllib

    data = tomllib.loads(DEFAULT_DEFINITION_PATH.read_text())
    data["slo"]["targets"].append({"transition": "phase9_to_phase10", "at": "10:00"})
    with pytest.raises(DefinitionError, match="unknown transition 'phase9_to_phase10'"):
        parse_definition(data)
    data["slo"]["targets"][-1] = {"transition": "phase2_to_phase3", "at": "10:00"}
    with pytest.raises(DefinitionError, match="more than one target"):
        parse_definition(data)
    data["slo"]["targets"].pop()
    data["slo"]["targets"][0]["mode"] = "overnight"  # phase2_to_phase3 has no modes
    with pytest.raises(DefinitionError, match="unknown mode 'overnight'"):
        parse_definition(data)
    data["slo"]["targets"][0].pop("mode")
    data["slo"]["targets"][0]["before_first_tipoff_minutes"] = 60  # and `at`: two targets
    with pytest.raises(DefinitionError, match="exactly one of at or before_first_tipoff_minutes"):
        parse_definition(data)
    assert read_definition(DEFAULT_DEFINITION_PATH).slo.targets  # the file itself is valid


def test_generations_stay_visible_and_the_first_is_judged() -> None:
    definition = load_definition()
    day = date(2026, 1, 24)
    now = _et(day + timedelta(days=2), 12)
    rows = [
        _row("phase5_to_phase6", day, _et(day + timedelta(days=1), 9, 30), status="partial", duration=1800),
        _row("phase5_to_phase6", day, _et(day + timedelta(days=1), 11, 5), gen=2, duration=9000),
        _row("phase5_to_phase6", day, _et(day + timedelta(days=1), 9, 31), status="blocked"),  # not a trigger
    ]
    history = {h.transition: h for h in build_history(definition, rows, day, day, now, games={day: 7})}
    night = history["phase5_to_phase6"].nights[0]
    assert [(t.generation, t.status) for t in night.triggers] == [(1, "partial"), (2, "complete")]
    assert night.verdict == "on_time"  # g1 at 09:30 ET, due 10:00 ET; g2 at 11:05 is shown, not judged
    assert history["phase5_to_phase6"].durations == [1800]  # the first generation's only


def test_late_missing_pending_and_no_games() -> None:
    definition = load_definition()
    start = date(2026, 1, 20)
    now = _et(date(2026, 1, 24), 7)  # 07:00 ET on the 24th
    rows = [
        _row("phase2_to_phase3", date(2026, 1, 20), _et(date(2026, 1, 21), 5, 59)),  # on time (06:00)
        _row("phase2_to_phase3", date(2026, 1, 21), _et(date(2026, 1, 22), 6, 1)),  # late by a minute
    ]
    games = {date(2026, 1, 20): 5, date(2026, 1, 21): 6, date(2026, 1, 22): 0, date(2026, 1, 23): 8}
    games[date(2026, 1, 24)] = 9
    h = next(x for x in build_history(definition, rows, start, date(2026, 1, 24), now, games=games))
    assert h.transition == "phase2_to_phase3"
    verdicts = [n.verdict for n in h.nights]
    # the 22nd had no games; the 23rd was due 06:00 on the 24th (passed); the 24th is due on the 25th
    assert verdicts == ["on_time", "late", "no_games", "missing", "pending"]
    assert h.nights[1].late_by == timedelta(minutes=1)
    assert (h.on_time, h.judged) == (1, 3)
    assert h.on_time_text() == "on time 1 of the last 3 nights"


def test_due_times_follow_daylight_saving_time() -> None:
    definition = load_definition()
    target = definition.slo.for_transition("phase5_to_phase6")
    assert target is not None
    # 10:00 ET the morning after: 15:00 UTC in EST, 14:00 UTC from 2026-03-08 (EDT)
    before = target.due_at(date(2026, 3, 6), ET, None, "19:00")
    after = target.due_at(date(2026, 3, 8), ET, None, "19:00")
    assert before.astimezone(UTC).hour == 15 and after.astimezone(UTC).hour == 14
    # a trigger at 14:30 UTC on 2026-03-09 is late (10:30 EDT), the same instant in winter would be on time
    rows = [_row("phase5_to_phase6", date(2026, 3, 8), datetime(2026, 3, 9, 14, 30, tzinfo=UTC))]
    rows.append(_row("phase5_to_phase6", date(2026, 3, 5), datetime(2026, 3, 6, 14, 30, tzinfo=UTC)))
    now = datetime(2026, 3, 10, tzinfo=UTC)
    h = next(x for x in build_history(definition, rows, date(2026, 3, 5), date(2026, 3, 8), now) if x.slo.at == "10:00")
    assert [n.verdict for n in h.nights] == ["on_time", "missing", "missing", "late"]


def test_a_tipoff_slo_uses_the_next_days_first_tipoff_or_the_fallback() -> None:
    definition = load_definition()
    day = date(2026, 1, 24)
    tipoff = datetime(2026, 1, 25, 15, 30, tzinfo=ET)  # an afternoon game the day after
    rows = [_row("phase4_to_phase5", day, _et(date(2026, 1, 25), 15, 0))]
    now = _et(date(2026, 1, 27), 0)
    h = next(
        x
        for x in build_history(
            definition, rows, day, day + timedelta(days=1), now, tipoffs={day + timedelta(days=1): tipoff}
        )
        if x.transition == "phase4_to_phase5"
    )
    assert h.nights[0].due == tipoff - timedelta(hours=1)
    assert h.nights[0].verdict == "late"  # 15:00 > 14:30
    assert h.nights[1].due == _et(date(2026, 1, 26), 18)  # no tip-off known on the 26th: 19:00 - 1 h


def test_mode_filter_and_trigger_ids() -> None:
    assert parse_trigger_id("phase3_to_phase4:2026-01-24:g2:overnight") == (2, "overnight")
    assert parse_trigger_id("phase2_to_phase3:2026-01-24:g1") == (1, None)
    definition = load_definition()
    day = date(2026, 1, 24)
    rows = [
        _row("phase3_to_phase4", day, _et(day, 9), mode="same_day"),  # before the games: not the SLO's mode
        _row("phase3_to_phase4", day, _et(day + timedelta(days=1), 8, 30), mode="overnight"),
    ]
    h = next(
        x
        for x in build_history(definition, rows, day, day, _et(day + timedelta(days=2), 0))
        if x.transition == "phase3_to_phase4"
    )
    assert [t.mode for t in h.nights[0].triggers] == ["overnight"]
    assert h.nights[0].verdict == "late"
    assert len(triggers_by_night(rows)[("phase3_to_phase4", day)]) == 2


def test_percentiles_nearest_rank() -> None:
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 50) == 5.0
    assert percentile(values, 95) == 10.0
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0


def _state(triggered: dict[str, Any]) -> DateState:
    return DateState("phase5_to_phase6", date(2026, 1, 24), 2, "triggered", triggered, None, (), None)


def test_slo_breach_missing_is_an_error_late_a_warning_on_time_nothing() -> None:
    day = date(2026, 1, 24)
    due = _et(date(2026, 1, 25), 10)
    missing = breach("phase5_to_phase6", day, due, due + timedelta(minutes=1), [], "10:00 ET the morning after", ET)
    assert missing is not None and missing.severity == "ERROR" and missing.kind == "slo_breach"
    assert missing.key == "slo_breach__phase5_to_phase6__2026-01-24"
    assert "2026-01-25 10:00 ET" in missing.message and "phasectl slo --date 2026-01-24" in missing.message
    assert breach("phase5_to_phase6", day, due, due - timedelta(minutes=1), [], "x", ET) is None  # not due yet
    triggers = state_triggers(
        _state(
            {
                "2": {
                    "trigger_id": "phase5_to_phase6:2026-01-24:g2",
                    "at": due + timedelta(hours=2),
                    "status": "complete",
                },
                "1": {
                    "trigger_id": "phase5_to_phase6:2026-01-24:g1",
                    "at": due + timedelta(minutes=30),
                    "status": "partial",
                },
            }
        ),
        None,
    )
    assert [t.generation for t in triggers] == [1, 2]
    late = breach("phase5_to_phase6", day, due, due + timedelta(hours=3), triggers, "x", ET)
    assert late is not None and late.severity == "WARNING" and "30 min after" in late.message
    assert late.key == missing.key and late.fingerprint != missing.fingerprint  # once per date; the verdict changed
    on_time = state_triggers(_state({"1": {"trigger_id": "t:g1", "at": due, "status": "complete"}}), None)
    assert breach("phase5_to_phase6", day, due, due + timedelta(hours=3), on_time, "x", ET) is None


def test_state_triggers_keep_only_the_slo_mode() -> None:
    at = _et(date(2026, 1, 25), 7)
    state = _state(
        {
            "1-same_day": {
                "trigger_id": "p:2026-01-24:g1:same_day",
                "at": at - timedelta(hours=20),
                "status": "complete",
            },
            "1-overnight": {"trigger_id": "p:2026-01-24:g1:overnight", "at": at, "status": "partial"},
        }
    )
    assert [t.mode for t in state_triggers(state, "overnight")] == ["overnight"]
    assert len(state_triggers(state, None)) == 2
