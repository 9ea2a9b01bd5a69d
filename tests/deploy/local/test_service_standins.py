"""The local cloud's service stand-ins (``deploy.local.standins.ServiceStandin``): what they record,
how their answers are scripted, and the CLI that reads and scripts them from another terminal. Real
HTTP on loopback, no emulator."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from deploy.local.stack import StackState
from deploy.local.standins import (
    CONTROL,
    DISPATCHER_AGENT,
    ServiceStandin,
    StartEndpoint,
    describe,
    main,
    parse_answers,
    read_records,
    token_claims,
)
from shared.clock import FixedClock
from shared.schedules.targets import local_id_token

NOW = datetime(2026, 1, 25, 16, 0, tzinfo=UTC)  # 11:00 ET


def call(
    url: str,
    method: str = "POST",
    body: Any = None,
    *,
    token: str | None = None,
    agent: str = DISPATCHER_AGENT,
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", "User-Agent": agent}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read() or b"null")


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[ServiceStandin]:
    server = ServiceStandin(
        "nba-phase4-precompute-processors", clock=FixedClock(NOW).now, log=tmp_path / "requests.jsonl"
    )
    yield server
    server.close()


def test_every_request_is_recorded_with_its_token_audience_and_answered_200(standin: ServiceStandin) -> None:
    body = {"analysis_date": "2026-01-25", "processors": ["MLFeatureStoreProcessor"]}
    status, _ = call(f"{standin.url}/process-date?dry=1", body=body, token=local_id_token(standin.url))
    assert status == 200
    (record,) = standin.recorded()
    assert record["service"] == "nba-phase4-precompute-processors"
    assert (record["method"], record["path"], record["query"]) == ("POST", "/process-date", {"dry": "1"})
    assert record["body"] == body
    assert record["aud"] == standin.url  # decoded from the unsigned local token
    assert record["status"] == 200
    assert record["at"] == NOW.isoformat()  # the simulated clock
    assert record["user_agent"] == DISPATCHER_AGENT
    assert describe(record) == (
        "nba-phase4-precompute-processors POST /process-date?dry=1 "
        f'{{analysis_date: 2026-01-25, processors: ["MLFeatureStoreProcessor"]}} aud={standin.url} -> 200'
    )


def test_the_log_holds_every_request_one_json_line_each(standin: ServiceStandin, tmp_path: Path) -> None:
    call(f"{standin.url}/a", body={"n": 1})
    call(f"{standin.url}/b", method="GET")
    records = read_records(tmp_path / "requests.jsonl")
    assert [(r["method"], r["path"]) for r in records] == [("POST", "/a"), ("GET", "/b")]
    assert records[0]["aud"] is None  # no token
    assert read_records(tmp_path / "requests.jsonl", "another-service") == []
    assert read_records(tmp_path / "missing.jsonl") == []


def test_scripted_answers_500_twice_then_200(standin: ServiceStandin) -> None:
    standin.script("/process-date", [500, 500])
    statuses = [call(f"{standin.url}/process-date", body={})[0] for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert [r["status"] for r in standin.recorded("/process-date")] == [500, 500, 200]
    assert call(f"{standin.url}/other", body={})[0] == 200  # another path is not scripted


def test_a_scripted_404_for_good_and_a_match_on_the_body(standin: ServiceStandin) -> None:
    standin.script("/gone", [], then=404)
    assert [call(f"{standin.url}/gone", body={})[0] for _ in range(2)] == [404, 404]
    standin.script("/process-date", [503], match={"analysis_date": "2026-01-25"})
    assert call(f"{standin.url}/process-date", body={"analysis_date": "2026-01-24"})[0] == 200  # not matched
    assert call(f"{standin.url}/process-date", body={"analysis_date": "2026-01-25"})[0] == 503
    assert call(f"{standin.url}/process-date", body={"analysis_date": "2026-01-25"})[0] == 200


def test_ready_answers_its_health_status(standin: ServiceStandin) -> None:
    assert call(f"{standin.url}/ready", method="GET") == (200, {"status": "ready"})
    standin.ready_status = "degraded"
    assert call(f"{standin.url}/ready", method="GET") == (200, {"status": "degraded"})
    assert len(standin.health_checks) == 2 and standin.received == []


def test_the_control_endpoints_script_and_read_from_another_process(standin: ServiceStandin) -> None:
    status, answer = call(f"{standin.url}{CONTROL}/script", body={"path": "/x", "statuses": [500], "then": 404})
    assert status == 200 and answer["scripts"] == {"/x": 1}
    assert [call(f"{standin.url}/x", body={})[0] for _ in range(2)] == [500, 404]
    status, answer = call(f"{standin.url}{CONTROL}/requests", method="GET")
    assert status == 200 and [r["status"] for r in answer["requests"]] == [500, 404]  # control calls not recorded
    assert call(f"{standin.url}{CONTROL}/script", body={"statuses": ["x"]})[0] == 400


def test_the_coordinator_plays_a_transition_start_not_a_scheduled_run() -> None:
    coordinator = StartEndpoint()
    try:
        assert call(f"{coordinator.url}/start", body={"game_date": "2026-01-24"}, agent="Python-urllib")[0] == 202
        assert (
            call(f"{coordinator.url}/start", body={"game_date": "2026-01-25", "prediction_run_mode": "RETRY"})[0] == 202
        )  # the dispatcher's call: recorded and answered, not played
        assert coordinator.requests.get_nowait() == {"game_date": "2026-01-24"}
        assert coordinator.requests.empty()
        assert [r["body"]["game_date"] for r in coordinator.received] == ["2026-01-24", "2026-01-25"]
    finally:
        coordinator.close()


@pytest.mark.parametrize(
    ("words", "expected"),
    [(["500", "500", "200"], [500, 500, 200]), (["500x2"], [500, 500]), (["500x2,404"], [500, 500, 404]), ([], [])],
)
def test_parse_answers(words: list[str], expected: list[int]) -> None:
    assert parse_answers(words) == expected


@pytest.mark.parametrize("word", ["600", "500x0", "abc"])
def test_parse_answers_rejects(word: str) -> None:
    with pytest.raises(ValueError):
        parse_answers([word])


def test_token_claims_of_anything_else_are_empty() -> None:
    assert token_claims(None) == {}
    assert token_claims("Basic abc") == {}
    assert token_claims("Bearer not-a-jwt") == {}
    assert token_claims(f"Bearer {local_id_token('http://x')}") == {"aud": "http://x", "iss": "phasechain-local"}


def test_the_cli_reads_the_records_and_scripts_a_stand_in(
    standin: ServiceStandin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    StackState(
        owner_pid=1,
        project="p",
        env={},
        standins={standin.service: {"url": standin.url, "url_env": "PRECOMPUTE_PROCESSOR_URL"}},
        standin_log=str(tmp_path / "requests.jsonl"),
    ).write(state)
    assert main(["--state-dir", str(state), "script", standin.service, "/process-date", "500x2", "--then", "404"]) == 0
    statuses = [call(f"{standin.url}/process-date", body={"analysis_date": "2026-01-25"})[0] for _ in range(3)]
    assert statuses == [500, 500, 404]
    capsys.readouterr()
    assert main(["--state-dir", str(state), "requests"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].endswith("POST /process-date {analysis_date: 2026-01-25} (no token) -> 500")
    assert main(["--state-dir", str(state), "script", "nope", "/x", "500"]) == 2
    assert main(["--state-dir", str(tmp_path / "none"), "requests"]) == 2
