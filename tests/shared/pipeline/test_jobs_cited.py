"""Every scheduled job against the replaced system's own declarations.

The ``[[jobs]]`` of ``pipeline.toml`` (and the sensor slots ``all_jobs()`` derives) carry a
``source = "<path>:<line>"`` into najicham/nba-stats-scraper@18f6ecfe. The cited files are checked in
verbatim under ``tests/data/upstream/schedules/`` (``SOURCES.md``: path and sha256), so these tests read
the very lines cited:

* the cited line holds the job's cron and names the job's zone: the job's row of the restore manifest's
  tables (the cron in backticks, the zone marker ``(ET)``, ``(UTC)``, ``(PT)`` or ``(**PT**)``), or a line
  of a setup script (the cron quoted, the job's name just above it; the zone the nearest literal
  ``--time-zone``/``TIMEZONE=`` in the file);
* every job of the manifest's wave B and C tables is defined, in that wave;
* every job the two phase 6 scripts create is defined, with the script's cron;
* no body carries a literal year or the replaced system's date keywords;
* each copy still matches its sha256.

Pure: no emulator, no network.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from shared.pipeline.definition import Job, PipelineDefinition, load_definition

REPO = Path(__file__).resolve().parents[3]
UPSTREAM = REPO / "tests" / "data" / "upstream" / "schedules"
SOURCES_MD = UPSTREAM / "SOURCES.md"
NOT_COPIES = {"SOURCES.md", "ruff.toml"}

MANIFEST = "docs/02-operations/scheduler-restore-manifest-2026.md"
MANIFEST_WAVE_LINES = (40, 85)  # "### Wave B" .. the last row of the wave C table
PHASE6_SCRIPTS = ("bin/deploy/deploy_phase6_scheduler.sh", "bin/orchestrators/setup_phase6_subset_schedulers.sh")

ZONE_MARKERS = {"ET": "America/New_York", "UTC": "UTC", "PT": "America/Los_Angeles"}
# `gcloud scheduler jobs create` without --time-zone interprets the schedule in UTC (Cloud Scheduler's
# default), not in the project's zone. No cited script relies on that: each names its zone literally
# (deploy_phase6_scheduler.sh:108 inside create_job, so for every job it creates; setup_same_day_schedulers.sh
# per job). setup_phase6_subset_schedulers.sh updates an existing job without --time-zone (:59-65), which
# keeps that job's zone, and creates a missing one in America/New_York (:76): the nearest literal zone.
CLOUD_SCHEDULER_DEFAULT_ZONE = "UTC"
SCRIPT_NAME_WINDOW = 6  # a script names the job at most this many lines above its --schedule

_SOURCE = re.compile(r"^(?P<path>[^:]+):(?P<first>\d+)(?:-(?P<last>\d+))?$")
_SOURCES_ROW = re.compile(r"^\| `(?P<path>[^`]+)` \| `(?P<sha>[0-9a-f]{64})` \|", re.MULTILINE)
_BACKTICKS = re.compile(r"`([^`]+)`")
_ZONE_MARKER = re.compile(r"\((?:\*\*)?(ET|UTC|PT)(?:\*\*)?\)")
_ALTERNATIVES = re.compile(r"^\d+(?:/\d+)+$")  # "7/10/13": three jobs' hours, not a cron step
_QUOTED = re.compile(r"\"([^\"]*)\"|'([^']*)'")
_SCRIPT_ZONE = re.compile(r"(?:--time-zone[= ]|TIMEZONE=)[\"']?(?P<zone>[A-Za-z]+(?:/[A-Za-z_]+)*)")
_WAVE_HEADING = re.compile(r"^### Wave ([ABC])\b")
_SCRIPT_JOB = re.compile(
    r"^[ \t]*(?:create_job|update_scheduler)[ \t]+(?:\\[ \t]*\n[ \t]*)?\"(?P<name>[a-z0-9-]+)\"[ \t]*\\[ \t]*\n"
    r"[ \t]*\"(?P<cron>[^\"]+)\"",
    re.MULTILINE,
)
_TEMPLATE = re.compile(r"\$\{[^}]*\}")
_YEAR = re.compile(r"(?<![\d.])(?:19|20)\d{2}(?!\d)")
_DATE_KEYWORD = re.compile(r"\b(?:TODAY|YESTERDAY|TOMORROW)\b")
_DATE_WORDS = {"today", "yesterday", "tomorrow", "auto"}


# ----------------------------------------------------------------------------- reading the copies


@cache
def sources() -> dict[str, str]:
    """``SOURCES.md``: copied path -> sha256."""
    return {m["path"]: m["sha"] for m in _SOURCES_ROW.finditer(SOURCES_MD.read_text())}


@cache
def upstream_lines(path: str) -> tuple[str, ...]:
    return tuple((UPSTREAM / path).read_text().splitlines())


def split_source(source: str) -> tuple[str, int]:
    """``"path:N"`` or ``"path:N-M"`` -> (path, N)."""
    m = _SOURCE.match(source)
    assert m, f"source {source!r} is not <path>:<line> or <path>:<first>-<last>"
    return m["path"], int(m["first"])


def normalise(cron: str) -> str:
    return " ".join(cron.split())


def _pad(fields: list[str]) -> str:
    """A manifest cron written short ("0 9") is the full one with the rest "*": "0 9 * * *"."""
    return " ".join(fields + ["*"] * (5 - len(fields)))


def expand_names(cell: str) -> list[str]:
    """A manifest job cell -> job names: "predictions-9am / predictions-12pm" -> both;
    "ml-feature-store-7am-et / -10am-et / -1pm-et" -> the first name's stem with each suffix."""
    parts = [p.strip() for p in cell.replace("**", "").split(" / ")]
    names = [parts[0]]
    for part in parts[1:]:
        if part.startswith("-"):
            stem = parts[0].rsplit("-", part.count("-"))[0]
            names.append(stem + part)
        else:
            names.append(part)
    return names


def expand_crons(cell: str) -> list[str]:
    """A manifest schedule cell -> crons: "`0 7/10/13 * * *`" -> three; "`0 9` / `0 12`" -> two."""
    spans = [span.split() for span in _BACKTICKS.findall(cell)]
    assert spans, f"no cron in backticks in {cell!r}"
    if len(spans) > 1:
        return [_pad(fields) for fields in spans]
    fields = spans[0]
    for i, field in enumerate(fields):
        if _ALTERNATIVES.match(field):
            return [_pad([*fields[:i], alt, *fields[i + 1 :]]) for alt in field.split("/")]
    return [_pad(fields)]


def manifest_row(line: str) -> dict[str, tuple[str, str]]:
    """One row of a manifest table -> {job name: (cron, zone)}."""
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    assert len(cells) >= 2, f"not a table row: {line!r}"
    names, crons = expand_names(cells[0]), expand_crons(cells[1])
    if len(crons) == 1:
        crons *= len(names)
    assert len(crons) == len(names), f"{len(names)} jobs but {len(crons)} crons in {line!r}"
    marker = _ZONE_MARKER.search(cells[1])
    assert marker, f"no zone marker in {cells[1]!r}"
    zone = ZONE_MARKERS[marker.group(1)]
    return {name: (cron, zone) for name, cron in zip(names, crons, strict=True)}


def manifest_waves() -> dict[str, str]:
    """Every job of the manifest's wave B and C tables -> its wave."""
    first, last = MANIFEST_WAVE_LINES
    lines = upstream_lines(MANIFEST)
    waves: dict[str, str] = {}
    wave = None
    for line in lines[first - 1 : last]:
        heading = _WAVE_HEADING.match(line)
        if heading:
            wave = heading.group(1)
        elif line.startswith("| ") and not line.startswith("| Job ") and wave:
            waves.update(dict.fromkeys(manifest_row(line), wave))
    return waves


def script_zone(path: str, line_no: int) -> str:
    """The zone a setup script gives the job created at ``line_no``: the nearest literal zone."""
    found = [
        (abs(n - line_no), n, m["zone"])
        for n, text in enumerate(upstream_lines(path), start=1)
        for m in _SCRIPT_ZONE.finditer(text)
    ]
    return min(found)[2] if found else CLOUD_SCHEDULER_DEFAULT_ZONE


_SHELL_ASSIGN = re.compile(r"^(?P<var>[A-Z_][A-Z0-9_]*)=\"(?P<value>[^\"$]*)\"\s*$")


def shell_vars(path: str, text: str) -> str:
    """``text`` with each ``${VAR}`` the script assigns a literal (``VAR="value"`` on a line of its own) replaced."""
    assigned = {m["var"]: m["value"] for line in upstream_lines(path) if (m := _SHELL_ASSIGN.match(line))}
    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)\}", lambda m: assigned.get(m[1], m[0]), text)


def script_jobs(path: str) -> dict[str, str]:
    """The jobs a phase 6 script creates or updates -> their cron (the argument after the name)."""
    return {m["name"]: normalise(m["cron"]) for m in _SCRIPT_JOB.finditer((UPSTREAM / path).read_text())}


def cited(definition: PipelineDefinition) -> list[Job]:
    return [job for job in definition.all_jobs() if job.source]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in _strings(item)]
    return []


def body_of(job: Job) -> list[Any]:
    """What a job sends that is written in the definition: the HTTP body and query, a JSON message."""
    if job.http is not None:
        return [job.http.body, job.http.query]
    assert job.pubsub is not None
    return [job.pubsub.body]


# ----------------------------------------------------------------------------- the copies


def test_each_copy_matches_its_sha256_in_sources_md() -> None:
    listed = sources()
    assert MANIFEST in listed and set(PHASE6_SCRIPTS) <= set(listed)
    on_disk = {p.relative_to(UPSTREAM).as_posix() for p in UPSTREAM.rglob("*") if p.is_file()}
    on_disk = {p for p in on_disk if p not in NOT_COPIES and "/.ruff_cache/" not in f"/{p}"}
    assert on_disk == set(listed), (
        f"copied but not listed: {sorted(on_disk - set(listed))}; listed but missing: {sorted(set(listed) - on_disk)}"
    )
    wrong = {
        path: hashlib.sha256((UPSTREAM / path).read_bytes()).hexdigest()
        for path, sha in listed.items()
        if hashlib.sha256((UPSTREAM / path).read_bytes()).hexdigest() != sha
    }
    assert not wrong, f"copies differ from SOURCES.md (sha256 now): {wrong}"


def test_every_job_source_points_into_a_copied_file() -> None:
    """A citation nobody can read is not checked: each cited file is copied (and so checked below)."""
    definition = load_definition()
    assert len(cited(definition)) >= 40
    outside = [f"{job.name}: {job.source}" for job in cited(definition) if split_source(job.source)[0] not in sources()]
    assert not outside, f"sources into files not under tests/data/upstream/schedules: {outside}"


# ----------------------------------------------------------------------------- the parsers themselves


def test_manifest_rows_expand_to_one_cron_and_zone_per_job() -> None:
    lines = upstream_lines(MANIFEST)
    assert manifest_row(lines[50 - 1]) == {
        "ml-feature-store-7am-et": ("0 7 * * *", "America/New_York"),
        "ml-feature-store-10am-et": ("0 10 * * *", "America/New_York"),
        "ml-feature-store-1pm-et": ("0 13 * * *", "America/New_York"),
    }
    assert manifest_row(lines[69 - 1]) == {
        "predictions-9am": ("0 9 * * *", "America/New_York"),
        "predictions-12pm": ("0 12 * * *", "America/New_York"),
    }
    assert manifest_row(lines[49 - 1]) == {"ml-feature-store-daily": ("30 23 * * *", "America/Los_Angeles")}
    assert manifest_row(lines[67 - 1]) == {"decay-detection-daily": ("0 16 * * *", "UTC")}
    assert manifest_row(lines[79 - 1]) == {"grading-readiness-check": ("*/15 22-23,0-2 * * *", "America/New_York")}
    # wave A's two-job row, outside the checked range, parses the same way
    assert manifest_row(lines[37 - 1]) == {
        "player-movement-registry-morning": ("10 13 * * *", "UTC"),
        "player-movement-registry-afternoon": ("10 19 * * *", "UTC"),
    }


def test_the_phase6_scripts_parse_to_their_jobs() -> None:
    assert script_jobs(PHASE6_SCRIPTS[0]) == {
        "phase6-daily-results": "0 5 * * *",
        "phase6-tonight-picks": "0 13 * * *",
        "phase6-player-profiles": "0 6 * * 0",
        "phase6-hourly-trends": "0 6-23 * * *",
        "phase6-season-game-counts": "0 6 * * *",
        "phase6-clv-reexport": "30 16 * * *",
        "phase6-clv-reexport-late": "30 19 * * *",
    }
    assert script_jobs(PHASE6_SCRIPTS[1]) == {
        "phase6-hourly-trends": "0 6-23 * * *",
        "phase6-daily-results": "0 5 * * *",
    }
    assert script_zone(PHASE6_SCRIPTS[0], 164) == "America/New_York"  # create_job's --time-zone (:108)


# ----------------------------------------------------------------------------- the jobs


@pytest.mark.parametrize("name", [job.name for job in cited(load_definition())])
def test_the_cited_line_holds_the_jobs_cron_and_zone(name: str) -> None:
    definition = load_definition()
    job = definition.job(name)
    path, line_no = split_source(job.source)
    if path not in sources():
        pytest.skip(f"{path} is not copied (see test_every_job_source_points_into_a_copied_file)")
    lines = upstream_lines(path)
    assert 1 <= line_no <= len(lines), f"{job.source}: {path} has {len(lines)} lines"
    line = lines[line_no - 1]
    zone = definition.job_zone(job).key
    if path == MANIFEST:
        row = manifest_row(line)
        assert name in row, f"{job.source} is the row of {sorted(row)}, not of {name}: {line!r}"
        assert (normalise(job.cron), zone) == row[name], f"{job.source}: {line!r}"
    else:
        quoted = {normalise(a or b) for a, b in _QUOTED.findall(line)}
        assert normalise(job.cron) in quoted, f"{job.source} does not hold the cron {job.cron!r}: {line!r}"
        # the job's name opens its command, literally or as a variable the script assigns literally
        # (expected_outputs_planner/deploy.sh:17 SCHEDULER_NAME="...", used at :61)
        command = [shell_vars(path, text) for text in lines[max(0, line_no - SCRIPT_NAME_WINDOW) : line_no]]
        assert any(re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) for text in command), (
            f"{job.source}: {name} is not named in the {SCRIPT_NAME_WINDOW} lines up to its schedule"
        )
        assert zone == script_zone(path, line_no), f"{job.source}: the script's zone is {script_zone(path, line_no)}"


def test_every_wave_b_and_c_job_of_the_manifest_is_defined_in_its_wave() -> None:
    definition = load_definition()
    expected = manifest_waves()
    assert {"ml-feature-store-10am-et", "predictions-12pm", "phase4-timeout-check-job"} <= set(expected)
    assert {"B", "C"} == set(expected.values())
    defined = {job.name: job.wave for job in definition.all_jobs()}
    missing = sorted(set(expected) - set(defined))
    assert not missing, f"manifest wave B/C jobs not in the definition: {missing}"
    wrong = {name: (defined[name], wave) for name, wave in expected.items() if defined[name] != wave}
    assert not wrong, f"defined wave vs the manifest's: {wrong}"


@pytest.mark.parametrize("script", PHASE6_SCRIPTS)
def test_every_job_of_the_phase6_scripts_is_defined_with_its_cron(script: str) -> None:
    definition = load_definition()
    jobs = script_jobs(script)
    assert jobs
    defined = {job.name: job for job in definition.all_jobs()}
    missing = sorted(set(jobs) - set(defined))
    assert not missing, f"{script} creates jobs the definition lacks: {missing}"
    wrong = {name: (defined[name].cron, cron) for name, cron in jobs.items() if normalise(defined[name].cron) != cron}
    assert not wrong, f"{script}: defined cron vs the script's: {wrong}"


def test_no_body_carries_a_year_or_a_date_keyword() -> None:
    """Bodies are templates: a literal year is wrong next season (the replaced nbac-player-movement-daily
    sent "year":"2026" forever, manifest :36), and "TODAY"/"YESTERDAY"/"TOMORROW"/"AUTO" were resolved
    by each service in a zone of its own (precompute's AUTO: yesterday in UTC)."""
    offenders = []
    for job in load_definition().all_jobs():
        for payload in body_of(job):
            text = _TEMPLATE.sub("", json.dumps(payload))
            if _YEAR.search(text):
                offenders.append(f"{job.name}: a year in {text}")
            for s in _strings(payload):
                bare = _TEMPLATE.sub("", s)
                if _DATE_KEYWORD.search(bare) or bare.strip().lower() in _DATE_WORDS:
                    offenders.append(f"{job.name}: date keyword {s!r}")
    assert not offenders, offenders
