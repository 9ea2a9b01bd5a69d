"""``[[jobs]]`` in the definition: each rule rejects a bad job with the job's name and the reason.

Pure: the packaged definition's TOML, changed and parsed, as ``tests/shared/orchestration/test_timed.py``
does for the sensors. Each case adds a job of its own (the control jobs below are accepted as they
are), on a ``[services]`` entry and a ``[prediction_ladder]`` mode of its own, so the packaged jobs
may change without changing what these tests prove.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from shared.pipeline.definition import DEFAULT_DEFINITION_PATH, load_definition
from tests.support.definition_checks import packaged_toml, parse, rejected

D = load_definition(DEFAULT_DEFINITION_PATH)  # the packaged definition, whatever $PIPELINE_DEFINITION says
SERVICE = "test-analytics-service"
MODE = "TEST_FIRST"
TOPIC = "test-export-trigger"


def http_job(name: str = "test-http-job", **changes: Any) -> dict[str, Any]:
    """A valid HTTP job (every template variable but ``${mode}``), then ``changes``."""
    job: dict[str, Any] = {
        "name": name,
        "cron": "30 10 * * *",
        "timezone": "America/New_York",
        "description": "a job of this test",
        "http": {
            "service": SERVICE,
            "path": "/process-date-range",
            "query": {"night": "${game_night}"},
            "body": {
                "start_date": "${yesterday}",
                "end_date": "${tomorrow}",
                "season": "${season}",
                "processors": ["UpcomingPlayerGameContextProcessor", "${today}"],
            },
        },
    }
    job.update(changes)
    return job


def pubsub_job(name: str = "test-pubsub-job", **changes: Any) -> dict[str, Any]:
    """A valid Pub/Sub job with a JSON body template, then ``changes``."""
    job: dict[str, Any] = {
        "name": name,
        "cron": "0 5 * * *",
        "timezone": "America/Los_Angeles",
        "pubsub": {"topic": TOPIC, "message": "json", "body": {"day": "${yesterday}"}},
    }
    job.update(changes)
    return job


def trigger_job(name: str = "test-trigger-job", **changes: Any) -> dict[str, Any]:
    """A valid Pub/Sub ``trigger`` job (what the phase 6 export runs are), then ``changes``."""
    job: dict[str, Any] = {
        "name": name,
        "cron": "0 13 * * *",
        "pubsub": {"topic": TOPIC, "message": "trigger", "date": "today", "export_types": ["tonight"]},
    }
    job.update(changes)
    return job


def mode_job(name: str = "test-mode-job", **changes: Any) -> dict[str, Any]:
    """A valid job of the ladder mode ``MODE`` whose body uses ``${mode}``, then ``changes``."""
    job = http_job(name, mode=MODE)
    job["http"] = {"service": SERVICE, "path": "/start", "body": {"game_date": "${today}", "mode": "${mode}"}}
    job.update(changes)
    return job


def with_jobs(*jobs: dict[str, Any], **sections: Any) -> dict[str, Any]:
    """The packaged TOML with ``jobs`` appended to ``[[jobs]]``, this test's service and mode, and
    ``sections`` set over the top-level sections."""
    data = packaged_toml()
    data.setdefault("services", {})[SERVICE] = {"description": "a service of this test"}
    data.setdefault("prediction_ladder", {})[MODE] = {"description": "a mode of this test"}
    data["jobs"] = [*data.get("jobs", []), *copy.deepcopy(list(jobs))]
    data.update(sections)
    return data


def index_of(data: Mapping[str, Any], name: str) -> int:
    """Where the job ``name`` is in ``[[jobs]]`` (the last of that name: the one a case added)."""
    return max(i for i, job in enumerate(data["jobs"]) if job["name"] == name)


# the packaged names a new job must not take
SLOT_JOB = D.sensors[0].slots[0].job  # a sensor slot's job (grading-readiness-check)
PACKAGED_JOB = D.jobs[0].name
SCHEDULE_JOB = next(s.job for s in D.schedules.values() if s.job)
DISPATCHER_JOB = D.dispatcher.job


# ------------------------------------------------------------------------------------ the controls


def test_the_control_jobs_are_accepted() -> None:
    definition = parse(with_jobs(http_job(), pubsub_job(), trigger_job(), mode_job()))
    http = definition.job("test-http-job")
    assert http.http is not None and http.pubsub is None and http.kind == "http"
    assert (http.http.service, http.cron, http.mode) == (SERVICE, "30 10 * * *", None)
    assert definition.job_zone(definition.job("test-pubsub-job")).key == "America/Los_Angeles"
    trigger = definition.job("test-trigger-job")
    assert trigger.pubsub is not None and trigger.pubsub.export_types == ("tonight",)
    assert definition.job_zone(trigger).key == definition.pipeline.timezone  # no zone: the pipeline's
    assert definition.job("test-mode-job").mode == MODE
    names = [j.name for j in definition.all_jobs()]
    assert names[len(D.jobs) : len(D.jobs) + 4] == [
        "test-http-job",
        "test-pubsub-job",
        "test-trigger-job",
        "test-mode-job",
    ]
    assert len(names) == len(set(names))


def test_the_packaged_jobs_keep_the_rules() -> None:
    """What the rules below reject, the packaged jobs do not do (their names are told apart too)."""
    names = [j.name for j in D.all_jobs()] + [e.job for e in D.schedule_entries().values() if e.job]
    assert len(names) == len(set(names)) and {SLOT_JOB, PACKAGED_JOB, SCHEDULE_JOB, DISPATCHER_JOB} <= set(names)
    for job in D.jobs:
        assert (job.http is None) != (job.pubsub is None), job.name
        assert job.http is None or job.http.service in D.services, job.name
        assert job.mode is None or job.mode in D.prediction_ladder, job.name


# ------------------------------------------------------------------------------------ the rules


@dataclass(frozen=True)
class Case:
    """A bad job among valid ones: ``name`` is the job the error must name, ``reasons`` why."""

    id: str
    jobs: tuple[dict[str, Any], ...]
    name: str
    reasons: tuple[str, ...]
    named: bool = True  # False: a field check: the error gives the path `jobs[<index>]` and then "(in <name>)"


def _template(where: str) -> dict[str, Any]:
    job = http_job("test-typo-job")
    if where == "body":
        job["http"]["body"]["start_date"] = "${tommorow}"
    elif where == "list":
        job["http"]["body"]["processors"] = ["${tommorow}"]
    elif where == "key":
        job["http"]["body"] = {"${tommorow}": "x"}
    elif where == "query":
        job["http"]["query"] = {"date": "${tommorow}"}
    else:
        job = pubsub_job("test-typo-job")
        job["pubsub"]["body"] = {"day": "${tommorow}"}
    return job


def _without(job: dict[str, Any], key: str) -> dict[str, Any]:
    del job[key]
    return job


UNKNOWN_VARIABLE = ("unknown template variable", "${tommorow}", "${tomorrow}")
CASES = [
    # a cron that fires never or cannot be read
    *(
        Case(f"cron-{tag}", (http_job("test-cron-job", cron=cron),), "test-cron-job", reasons, named=False)
        for tag, cron, reasons in [
            (
                "minute-61",
                "61 10 * * *",
                ("invalid cron expression '61 10 * * *'", "minute field", "out of range 0-59"),
            ),
            ("hour-24", "0 24 * * *", ("invalid cron expression '0 24 * * *'", "hour field", "out of range 0-23")),
            ("february-30", "0 6 30 2 *", ("invalid cron expression '0 6 30 2 *'", "would never fire")),
            ("zero-step", "*/0 10 * * *", ("invalid cron expression '*/0 10 * * *'", "not a positive number")),
            ("day-name", "0 10 * * FOO", ("invalid cron expression '0 10 * * FOO'", "day-of-week field", "'FOO'")),
            ("four-fields", "0 10 * *", ("cron", "should match pattern")),
        ]
    ),
    # an unknown time zone
    *(
        Case(f"zone-{tag}", (pubsub_job("test-zone-job", timezone=tz),), "test-zone-job", reasons, named=False)
        for tag, tz, reasons in [
            ("mars", "Mars/Olympus", ("unknown time zone 'Mars/Olympus'",)),
            ("space", "America/New York", ("unknown time zone 'America/New York'",)),
        ]
    ),
    # a body template naming an unknown variable
    *(
        Case(f"template-{where}", (_template(where),), "test-typo-job", UNKNOWN_VARIABLE, named=False)
        for where in ("body", "list", "key", "query", "pubsub")
    ),
    # a target service not in [services]
    Case(
        "service-unknown",
        (http_job("test-service-job", http={"service": "nba-phase9-nowhere", "path": "/run"}),),
        "test-service-job",
        ("target service 'nba-phase9-nowhere' is not defined in [services]", SERVICE),
    ),
    # two jobs of one name, or a job named like another scheduled job
    Case(
        "name-twice",
        (http_job("test-twin-job"), pubsub_job("test-twin-job")),
        "test-twin-job",
        ("duplicate job names",),
    ),
    Case("name-of-a-slot-job", (pubsub_job(SLOT_JOB),), SLOT_JOB, ("duplicate job names",)),
    Case("name-of-a-packaged-job", (trigger_job(PACKAGED_JOB),), PACKAGED_JOB, ("duplicate job names",)),
    Case("name-of-a-schedule", (http_job(SCHEDULE_JOB),), SCHEDULE_JOB, ("duplicate job names",)),
    Case("name-of-the-dispatcher-tick", (http_job(DISPATCHER_JOB),), DISPATCHER_JOB, ("duplicate job names",)),
    # a mode not in [prediction_ladder], or ${mode} without a mode
    Case(
        "mode-unknown",
        (mode_job("test-ladder-job", mode="THIRD"),),
        "test-ladder-job",
        ("mode 'THIRD' is not a [prediction_ladder] mode", MODE),
    ),
    Case(
        "mode-missing",
        (_without(mode_job("test-ladder-job"), "mode"),),
        "test-ladder-job",
        ("its body uses ${mode} but the job has no `mode`",),
    ),
    # both targets, or neither
    Case(
        "target-both",
        (http_job("test-target-job", pubsub={"topic": TOPIC, "message": "json", "body": {"a": 1}}),),
        "test-target-job",
        ("exactly one target", "`http` or `pubsub`"),
        named=False,
    ),
    Case(
        "target-neither",
        (_without(http_job("test-targetless-job"), "http"),),
        "test-targetless-job",
        ("exactly one target",),
        named=False,
    ),
    # retries waiting longer than the dispatcher's catch-up window (15 min), less a minute
    Case(
        "retries-1800s",
        (http_job("test-retry-job", max_attempts=5, retry_base_seconds=120),),
        "test-retry-job",
        ("its retries wait 1800 s in all", "catch-up window (900 s)"),
    ),
    Case(
        "retries-840s",  # 120 + 240 + 480: the window's last minute is the backoff's margin
        (pubsub_job("test-retry-job", max_attempts=4, retry_base_seconds=120),),
        "test-retry-job",
        ("its retries wait 840 s in all", "catch-up window (900 s)"),
    ),
]


def case_data(case: Case) -> dict[str, Any]:
    return with_jobs(*case.jobs)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_job_is_rejected_with_the_reason(case: Case) -> None:
    data = case_data(case)
    where = f"jobs ({case.name})" if case.named else f"jobs[{index_of(data, case.name)}]"
    if case.id.startswith("name-"):  # the duplicate-name check names the job without "jobs (...)"
        where = case.name
    rejected(data, where, *case.reasons)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_job_is_rejected_naming_the_job(case: Case) -> None:
    rejected(case_data(case), case.name, *case.reasons)


# ------------------------------------------------------------------------------------ edges the rules keep


@pytest.mark.parametrize(
    ("max_attempts", "retry_base_seconds"),
    [(1, 3600), (4, 119), (3, 279), (10, 1)],  # 0 s, 833 s, 837 s, 511 s of waits
)
def test_retries_that_fit_the_catch_up_window_are_accepted(max_attempts: int, retry_base_seconds: int) -> None:
    job = http_job(max_attempts=max_attempts, retry_base_seconds=retry_base_seconds)
    definition = parse(with_jobs(job))
    assert definition.job("test-http-job").max_attempts == max_attempts


def test_a_longer_catch_up_window_accepts_longer_retries() -> None:
    job = http_job(max_attempts=5, retry_base_seconds=120)  # 1800 s, rejected on the packaged 15 minutes
    definition = parse(with_jobs(job, dispatcher={**packaged_toml().get("dispatcher", {}), "catch_up_minutes": 32}))
    assert definition.dispatcher.catch_up_minutes == 32


def test_a_sensor_slots_job_keeps_the_retry_rule_too() -> None:
    """A sensor slot is a job the dispatcher runs: with a 2-minute window its default retries (60 s,
    then 120 s) no longer fit, and the error names the slot's job."""
    data = with_jobs()
    data["dispatcher"] = {**data.get("dispatcher", {}), "catch_up_minutes": 2}
    for job in data["jobs"]:
        job["max_attempts"] = 1
    rejected(data, f"jobs ({SLOT_JOB})", "its retries wait 180 s in all", "catch-up window (120 s)")


def test_a_mode_job_needs_its_mode_in_the_ladder_of_this_definition() -> None:
    data = with_jobs(mode_job())
    del data["prediction_ladder"][MODE]
    rejected(data, "jobs (test-mode-job)", f"mode {MODE!r} is not a [prediction_ladder] mode")


def test_a_job_forbids_unknown_keys() -> None:
    for job, fragment in [
        (http_job("test-extra-job", retries=3), ".retries"),
        (http_job("test-extra-job", http={"service": SERVICE, "url": "https://x"}), ".http.url"),
        (pubsub_job("test-extra-job", pubsub={"topic": TOPIC, "body": {}, "attrs": {}}), ".pubsub.attrs"),
    ]:
        data = with_jobs(job)
        rejected(data, f"jobs[{index_of(data, 'test-extra-job')}]{fragment}", "Extra inputs are not permitted")
