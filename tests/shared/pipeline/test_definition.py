"""The pipeline definition: defaults, normalisation, and precise errors for bad files."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from typing import Any

import pytest

from shared.errors import DefinitionError
from shared.pipeline import DEFAULT_DEFINITION_PATH, ModeWhen, load_definition, parse_definition, read_definition

REPO = Path(__file__).resolve().parents[3]


def _raw() -> dict[str, Any]:
    return tomllib.loads(DEFAULT_DEFINITION_PATH.read_text())


def _transition(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in data["transitions"] if t["name"] == name)


def test_default_topics_chain_the_phases() -> None:
    d = load_definition()
    pairs = {t.name: (d.source_topic(t), d.target_topic(t)) for t in d.transitions}
    assert pairs == {
        "phase2_to_phase3": ("nba-phase2-raw-complete", "nba-phase3-trigger"),
        "phase3_to_phase4": ("nba-phase3-analytics-complete", "nba-phase4-trigger"),
        "phase4_to_phase5": ("nba-phase4-precompute-complete", "nba-predictions-trigger"),
        "phase5_to_phase6": ("nba-phase5-predictions-complete", "nba-phase6-export-trigger"),
    }
    assert d.transition_for_topic("nba-phase4-precompute-complete").name == "phase4_to_phase5"


def test_upstream_defaults_are_the_lessons_defaults() -> None:
    d = load_definition()
    p34 = d.transition("phase3_to_phase4")
    overnight = p34.mode_for(ModeWhen.BEFORE_TODAY)
    same_day = p34.mode_for(ModeWhen.TODAY)
    assert overnight is not None and len(overnight.expected) == 5
    assert same_day is not None and same_day.expected == ("upcoming_player_game_context",)
    assert same_day.optional == ("upcoming_team_game_context",)
    assert p34.majority_threshold == 0.6
    tiers = [(t.after_minutes, t.min_completed) for t in d.transition("phase4_to_phase5").deadline_tiers]
    assert tiers == [(60, 4), (120, 3), (240, 1)]
    completion = d.transition("phase5_to_phase6").completion
    assert completion is not None
    assert (completion.min_completion_pct, completion.min_predictions) == (80.0, 10)
    assert completion.target_date_key == "target_date" and completion.export_types
    assert [s.name for s in d.games.boxscore_sources] == ["bdl", "espn", "gamebook"]
    assert (d.retry.max_retries, d.retry.base_delay_minutes, d.retry.stale_retrying_minutes) == (3, 15, 120)
    assert d.gates["game_coverage"].thresholds() == {"block_below": 50.0, "alert_below": 100.0}
    assert d.schedules["phase_transition_monitor"].cron == "*/10 * * * *"


@pytest.mark.parametrize(
    ("phase", "raw", "canonical"),
    [
        (4, "ml_feature_store_v2", "ml_feature_store"),
        (4, "MLFeatureStoreProcessor", "ml_feature_store"),
        (3, "PlayerGameSummaryProcessor", "player_game_summary"),
        (3, "player-game-summary", "player_game_summary"),
        (3, " Player_Game_Summary ", "player_game_summary"),
        (2, "BdlPlayerBoxscoresProcessor", "bdl_player_boxscores"),
    ],
)
def test_names_normalise_through_aliases(phase: int, raw: str, canonical: str) -> None:
    assert load_definition().normalise_processor(phase, raw) == canonical


def test_l08_unknown_names_and_other_phases_never_normalise() -> None:
    d = load_definition()
    assert d.normalise_processor(3, "player_game_summary_experimental") is None
    assert d.normalise_processor(4, "player_game_summary") is None  # a phase-3 name in phase 4
    assert d.normalise_processor(3, "") is None


def test_l08_processor_names_live_only_in_the_definition() -> None:
    """The old system listed expected processors in four places; here only pipeline.toml may."""
    names = {p.name for p in load_definition().processors}
    offenders = []
    for root in ("shared", "functions", "deploy"):
        for path in (REPO / root).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and node.value in names:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value}")
    assert offenders == []


def test_has_gates_says_whether_a_transition_lists_gates() -> None:
    """What the runtime and the bundle build ask to load or ship the gate backend."""
    transitions = load_definition().transitions
    assert {t.name: t.has_gates for t in transitions} == {t.name: bool(t.gates) for t in transitions}
    assert {t.has_gates for t in transitions} == {True, False}  # both kinds exist today


def test_env_var_selects_another_definition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = DEFAULT_DEFINITION_PATH.read_text().replace('name = "nba-nightly"', 'name = "other-night"')
    path = tmp_path / "pipeline.toml"
    path.write_text(data)
    monkeypatch.setenv("PIPELINE_DEFINITION", str(path))
    assert load_definition().pipeline.name == "other-night"


def _error_for(data: dict[str, Any]) -> str:
    with pytest.raises(DefinitionError) as info:
        parse_definition(data, "pipeline.toml")
    return str(info.value)


def test_unknown_processor_in_expected_names_file_path_and_reason() -> None:
    data = _raw()
    _transition(data, "phase4_to_phase5")["expected"][0] = "no_such_processor"
    message = _error_for(data)
    assert "pipeline.toml: transitions[2]" in message
    assert "phase4_to_phase5" in message and "no_such_processor" in message
    assert "not processors of phase 4" in message


def test_wrong_type_names_the_field_path() -> None:
    data = _raw()
    _transition(data, "phase3_to_phase4")["modes"][1]["expected"] = "upcoming_player_game_context"
    assert "pipeline.toml: transitions[1].modes[1].expected: Input should be a valid tuple" in _error_for(data)


def test_unknown_key_is_rejected_not_ignored() -> None:
    data = _raw()
    data["retry"]["max_retrys"] = 5
    assert "pipeline.toml: retry.max_retrys: Extra inputs are not permitted" in _error_for(data)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d["pipeline"].update(timezone="America/Nowhere"), "unknown IANA timezone"),
        (lambda d: _transition(d, "phase4_to_phase5")["deadline_tiers"].reverse(), "strictly increasing"),
        (lambda d: _transition(d, "phase3_to_phase4")["modes"].pop(), "missing: ['after_today']"),
        (lambda d: d["phases"][1].update(trigger_topic="nba-phase2-raw-complete"), "topics used twice"),
        (lambda d: _transition(d, "phase2_to_phase3").update(gates=["nope"]), "unknown gate 'nope'"),
        (lambda d: _transition(d, "phase2_to_phase3").update(target_phase=4), "source_phase + 1"),
        (lambda d: d["processors"][0]["aliases"].append("bdl_player_boxscores"), "already names"),
        (lambda d: d["retry"]["fallbacks"].update(bdl_player_boxscores="ghost"), "unknown processor 'ghost'"),
        (lambda d: d["processors"][0].update(no_data="maybe"), "Input should be 'done' or 'not_done'"),
        (lambda d: d.pop("games"), "games: Field required"),
    ],
)
def test_invalid_definitions_fail_with_a_reason(mutate: Any, reason: str) -> None:
    data = _raw()
    mutate(data)
    assert reason in _error_for(data)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[pipeline\nname = 1")
    with pytest.raises(DefinitionError, match=r"broken.toml: not valid TOML"):
        read_definition(path)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match=r"cannot read pipeline definition .*absent.toml"):
        read_definition(tmp_path / "absent.toml")
