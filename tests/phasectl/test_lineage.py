"""``phasectl lineage`` and the page's lineage section, from the real pipeline definition."""

from __future__ import annotations

import io
import json

from phasectl import main
from phasectl.commands.lineage import Node, build_lineage, job_phases, render_text
from phasectl.page_lineage import render_section
from shared.pipeline.definition import load_definition

DEFINITION = load_definition()


def _find(nodes: tuple[Node, ...], kind: str, name: str) -> Node:
    for top in nodes:
        for node in top.walk():
            if node.kind == kind and node.name == name:
                return node
    raise AssertionError(f"no {kind} {name}")


def _phase(nodes: tuple[Node, ...], number: int) -> Node:
    return next(n for n in nodes if n.name.startswith(f"phase {number} "))


def test_every_phase_in_order_with_its_transition_trigger_topic_and_consumer() -> None:
    nodes = build_lineage(DEFINITION)
    assert [n.name for n in nodes] == [f"phase {p.number} {p.name}" for p in DEFINITION.phases]
    for t in DEFINITION.transitions:
        transition = _find(nodes, "transition", t.name)
        assert transition in _phase(nodes, t.source_phase).children
        (topic,) = transition.children
        assert (topic.kind, topic.name) == ("topic", DEFINITION.target_topic(t))
    p23 = _find(nodes, "transition", "phase2_to_phase3").children[0].children
    assert [c.name for c in p23] == ["phase 3 analytics"]
    assert "one message per completed source table" in p23[0].detail
    # 4→5 starts the coordinator by an authenticated POST (its [services] entry by the same url_env)
    (coordinator,) = _find(nodes, "transition", "phase4_to_phase5").children[0].children
    assert coordinator.name == "prediction-coordinator"
    assert coordinator.detail.startswith("POST $PREDICTION_COORDINATOR_URL/start")


def test_processors_carry_their_role_and_where_else_they_matter() -> None:
    nodes = build_lineage(DEFINITION)
    assert _find(nodes, "processor", "nbac_gamebook_player_stats").detail.startswith("critical;")
    assert _find(nodes, "processor", "odds_api_player_points_props").detail.startswith("optional;")
    assert "critical (overnight)" in _find(nodes, "processor", "player_game_summary").detail
    espn = _find(nodes, "processor", "espn_boxscores").detail
    assert "not counted" in espn and "boxscore source espn" in espn and "fallback for bdl_player_boxscores" in espn


def test_consumers_downstream_sensors_jobs_and_checks() -> None:
    nodes = build_lineage(DEFINITION)
    phase5 = _phase(nodes, 5)
    sensor = next(c for c in phase5.children if c.kind == "sensor")
    assert sensor.name == "grading_readiness" and "predictions" in sensor.detail
    (topic,) = sensor.children
    assert topic.name == "nba-grading-trigger" and topic.children[0].name == "grading"
    assert job_phases(DEFINITION, DEFINITION.job("same-day-predictions")) == {5}  # by the coordinator's service
    assert job_phases(DEFINITION, DEFINITION.job("overnight-analytics-6am-et")) == {3}  # by the processors named
    jobs = next(c for c in _phase(nodes, 4).children if c.kind == "jobs")
    assert "ml-feature-store-daily" in [j.name for j in jobs.children]
    assert "phase4-timeout-check-job" not in [n.name for top in nodes for n in top.walk()]  # replaced: never runs
    checks = [c.name for c in _phase(nodes, 3).children if c.kind == "check"]
    assert "self-heal yesterday_analytics" in checks and "gap pass" in checks


def test_one_processor_and_what_is_downstream() -> None:
    nodes = build_lineage(DEFINITION, "bdl_player_boxscores")
    assert nodes[0].name == "phase 2 raw" and len(nodes) == len(DEFINITION.phases)
    first = next(c for c in nodes[0].children if c.kind == "processors")
    assert [p.name for p in first.children] == ["bdl_player_boxscores"]
    later = next(c for c in _phase(nodes, 3).children if c.kind == "processors")
    assert len(later.children) == len(DEFINITION.processors_of(3))  # downstream phases in full
    text = render_text(DEFINITION, nodes, "bdl_player_boxscores")
    assert "bdl_player_boxscores — not counted" in text
    assert "→ topic nba-phase3-trigger" in text
    assert "nbac_player_boxscores" not in text.split("phase 3 analytics")[0]


def test_command_text_json_and_a_bad_processor() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["lineage", "--processor", "EspnBoxscoreProcessor", "--json"], environ={}, out=out, err=err) == 0
    data = json.loads(out.getvalue())
    assert (data["command"], data["processor"]) == ("lineage", "espn_boxscores")
    assert data["phases"][0]["children"][0]["children"][0]["name"] == "espn_boxscores"
    out, err = io.StringIO(), io.StringIO()
    assert main(["lineage", "--processor", "no_such"], environ={}, out=out, err=err) == 2
    assert err.getvalue().count("\n") == 1 and "known: nbac_gamebook_player_stats" in err.getvalue()


def test_page_section_is_nested_lists_with_every_value_escaped() -> None:
    odd = DEFINITION.model_copy(
        update={"pipeline": DEFINITION.pipeline.model_copy(update={"name": "<script>alert(1)</script>"})}
    )
    page = render_section(odd, build_lineage(odd))
    assert page.startswith('<section id="lineage">') and page.endswith("</section>")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("<details open>") == len(DEFINITION.phases)
    assert "<b>phase4_to_phase5</b>" not in page and "<b>transition phase4_to_phase5</b>" in page
    assert "→ <b>topic nba-predictions-trigger</b>" in page.replace("&rarr;", "→")
