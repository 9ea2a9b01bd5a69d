"""Exported JSON Schemas: rendering, writing, and the drift check against docs/contracts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.contracts.messages import ProcessorCompletion
from shared.contracts.schemas import CONTRACTS, check_schemas, main, render_schemas, write_schemas

REPO = Path(__file__).resolve().parents[3]
DOCS = REPO / "docs" / "contracts"


def test_docs_contracts_match_the_models() -> None:
    problems = check_schemas(DOCS)
    assert problems == [], "\n".join(problems) + "\nrun: python -m shared.contracts.schemas --write docs/contracts"


def test_render_gives_one_sorted_schema_file_per_contract() -> None:
    rendered = render_schemas()
    assert set(rendered) == {f"{stem}.json" for stem in CONTRACTS}
    for name, text in rendered.items():
        assert text.endswith("}\n")
        schema = json.loads(text)
        assert schema["title"] == CONTRACTS[name.removesuffix(".json")].__name__
        assert text == json.dumps(schema, indent=2, sort_keys=True) + "\n"
    assert render_schemas() == rendered


def test_outbound_schemas_forbid_unknown_keys_and_inbound_completion_does_not() -> None:
    schemas = {name: json.loads(text) for name, text in render_schemas().items()}
    for name in ("phase_trigger.json", "retry_request.json", "monitor_tick.json", "retry_tick.json"):
        assert schemas[name]["additionalProperties"] is False
    assert schemas["processor_completion.json"].get("additionalProperties", True) is True


def test_completion_schema_documents_the_target_date_alias() -> None:
    schema = json.loads(render_schemas()["processor_completion.json"])
    assert schema["properties"]["target_date"]["format"] == "date"
    assert "game_date" not in schema["required"]
    assert schema["anyOf"] == [{"required": ["game_date"]}, {"required": ["target_date"]}]


@pytest.mark.parametrize("text", ["3", "phase3", "phase_3", "PHASE_3", "Phase9", "phase_0", "phase-3", "p3", "10", ""])
def test_completion_schema_phase_pattern_agrees_with_the_model(text: str) -> None:
    pattern = json.loads(render_schemas()["processor_completion.json"])["properties"]["phase"]["anyOf"][1]["pattern"]
    payload = {
        "processor_name": "p",
        "phase": text,
        "execution_id": "e",
        "game_date": "2026-01-24",
        "status": "success",
        "timestamp": "2026-01-25T08:00:00Z",
    }
    try:
        ProcessorCompletion.model_validate(payload)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == (re.fullmatch(pattern, text) is not None)


def test_written_schemas_pass_the_check(tmp_path: Path) -> None:
    written = write_schemas(tmp_path / "contracts")
    assert sorted(p.name for p in written) == sorted(render_schemas())
    assert check_schemas(tmp_path / "contracts") == []


def test_check_reports_a_drifting_file_with_a_diff(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    target = tmp_path / "phase_trigger.json"
    target.write_text(target.read_text().replace('"generation"', '"generation_number"', 1))
    problems = check_schemas(tmp_path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{target}: out of date")
    assert '-    "generation_number"' in problems[0]
    assert '+    "generation"' in problems[0]


def test_check_reports_missing_and_unexpected_files(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    (tmp_path / "retry_tick.json").unlink()
    (tmp_path / "old_contract.json").write_text("{}\n")
    problems = check_schemas(tmp_path)
    assert any(p.startswith(f"{tmp_path / 'retry_tick.json'}: missing") for p in problems)
    assert any(p.startswith(f"{tmp_path / 'old_contract.json'}: unexpected file") for p in problems)
    assert len(problems) == 2


def test_check_of_a_missing_directory_reports_every_file(tmp_path: Path) -> None:
    assert len(check_schemas(tmp_path / "nowhere")) == len(CONTRACTS)


def test_write_removes_stale_schema_files(tmp_path: Path) -> None:
    (tmp_path / "old_contract.json").write_text("{}\n")
    (tmp_path / "README.md").write_text("kept\n")
    write_schemas(tmp_path)
    assert not (tmp_path / "old_contract.json").exists()
    assert (tmp_path / "README.md").exists()


def test_long_diffs_are_truncated(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    (tmp_path / "processor_completion.json").write_text("{}\n")
    (problem,) = check_schemas(tmp_path)
    assert "more diff lines)" in problem
    assert len(problem.splitlines()) < 50


def test_cli_write_then_check_succeeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--write", str(tmp_path)]) == 0
    assert main(["--check", str(tmp_path)]) == 0
    assert "match the models" in capsys.readouterr().out


def test_cli_check_exits_1_and_names_the_drifting_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schemas(tmp_path)
    (tmp_path / "monitor_tick.json").write_text("{}\n")
    assert main(["--check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "1 contract schema file(s) drift" in err
    assert f"{tmp_path / 'monitor_tick.json'}: out of date" in err


def test_cli_needs_write_or_check(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc_info:
        main([])
    assert exc_info.value.code == 2


def test_module_runs_as_a_script_against_docs_contracts() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shared.contracts.schemas", "--check", "docs/contracts"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
