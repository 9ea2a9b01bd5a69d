"""The ``[[jobs]]``, ``[services]``, ``[[seasons]]`` and ``[prediction_ladder]`` sections: the
time-driven half of the pipeline.

A part of ``shared.pipeline.definition`` (import from there).

Every scheduled job is declared here once, with its real name, cron and time zone (per job:
America/New_York, UTC and America/Los_Angeles sit side by side in the replaced system) and one
target: an HTTP call to a Cloud Run service (by service name and path; the URL is resolved per
project and region, the OIDC audience is the service's base URL) or a Pub/Sub message. Bodies are
templates: ``${today}``, ``${yesterday}``, ``${tomorrow}``, ``${game_night}``, ``${mode}`` and
``${season}`` are resolved in the job's own zone at the slot's fire time, so no body carries a
literal date or year (the replaced ``nbac-player-movement-daily`` sent ``"year":"2026"`` forever:
scheduler-restore-manifest-2026.md:36).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, model_validator

from shared.pipeline._models import DefinitionModel, TopicName
from shared.pipeline._timed import Cron, DateRule, JobId, Sensor

TEMPLATE_VARIABLES = ("today", "yesterday", "tomorrow", "game_night", "mode", "season")
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
ServiceName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")]
Wave = Literal["A", "B", "C"]


def template_variables(value: Any) -> Iterator[str]:
    """Every ``${name}`` in a body template (strings anywhere in nested dicts and lists)."""
    if isinstance(value, str):
        yield from _VARIABLE.findall(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from template_variables(key)
            yield from template_variables(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from template_variables(item)


def _check_template(value: Any) -> None:
    unknown = sorted({v for v in template_variables(value) if v not in TEMPLATE_VARIABLES})
    if unknown:
        raise ValueError(
            f"names unknown template variable(s) {['${' + v + '}' for v in unknown]} "
            f"(known: {['${' + v + '}' for v in TEMPLATE_VARIABLES]})"
        )


class Service(DefinitionModel):
    """A Cloud Run service jobs call. Its URL: ``url_env`` when that variable is set, else
    ``https://{name}-{project number}.{region}.run.app`` (Cloud Run's deterministic URL; the
    project number from ``GOOGLE_CLOUD_PROJECT_NUMBER``)."""

    url_env: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")] | None = None
    description: str = ""


class HttpTarget(DefinitionModel):
    """An HTTP call with an OIDC ID token whose audience is the service's base URL."""

    service: ServiceName
    path: Annotated[str, Field(pattern=r"^/[A-Za-z0-9/_.~-]*$")] = "/"
    method: Literal["POST", "GET", "PUT"] = "POST"
    query: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | None = None
    auth: Literal["id_token", "none"] = "id_token"
    timeout_seconds: int = Field(default=180, ge=1, le=1800)  # Cloud Scheduler's attemptDeadline range

    @model_validator(mode="after")
    def _template(self) -> Self:
        _check_template(self.body)
        _check_template(self.query)
        if self.method == "GET" and self.body is not None:
            raise ValueError("a GET target sends no body (use `query`)")
        return self


class PubsubTarget(DefinitionModel):
    """A Pub/Sub message. ``message = "trigger"``: a ``TimedTriggerMessage`` (what phase 6 export
    and grading read: ``target_date``, ``export_types``, ``update_latest``); ``"json"``: ``body``
    as the data, a template."""

    topic: TopicName
    message: Literal["trigger", "json"] = "json"
    body: dict[str, Any] | None = None
    date: DateRule = "today"  # the trigger's target_date
    export_types: tuple[str, ...] = ()
    update_latest: bool | None = None

    @model_validator(mode="after")
    def _shape(self) -> Self:
        _check_template(self.body)
        if self.message == "json" and self.body is None:
            raise ValueError("a `json` Pub/Sub target needs a `body`")
        if self.message == "trigger" and self.body is not None:
            raise ValueError("a `trigger` Pub/Sub target builds its message; give `date`/`export_types`, not `body`")
        return self


class Job(DefinitionModel):
    """One scheduled job: when it fires (cron in its zone, within its season window), what it calls."""

    name: JobId
    cron: Cron
    timezone: str | None = None  # default: the pipeline's
    description: str = ""
    source: str = ""  # where the replaced system declares it: "<path>:<line>"
    wave: Wave | None = None  # when it resumes before the opener ([[seasons]] waves)
    window: Literal["season", "regular_season", "always"] = "season"
    mode: str | None = None  # a [prediction_ladder] mode; ${mode} in its body
    http: HttpTarget | None = None
    pubsub: PubsubTarget | None = None
    replaced_by: str = ""  # declared for the record, never dispatched: what in this package does its work
    max_attempts: int = Field(default=3, ge=1, le=10)  # 5xx and timeouts are retried this often in all
    retry_base_seconds: int = Field(default=60, ge=1, le=3600)  # then 2x per attempt
    missed_after_minutes: int = Field(default=15, ge=1, le=1440)  # no run record this long after a slot

    @model_validator(mode="after")
    def _target(self) -> Self:
        if (self.http is None) == (self.pubsub is None):
            raise ValueError("a job has exactly one target: `http` or `pubsub`")
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {self.timezone!r}") from exc
        from shared.schedules.cron import CronExpression

        CronExpression.parse(self.cron)
        return self

    @property
    def kind(self) -> Literal["http", "pubsub"]:
        return "http" if self.http is not None else "pubsub"

    @property
    def dispatched(self) -> bool:
        return not self.replaced_by


class Season(DefinitionModel):
    """One season's calendar (dates in the pipeline's zone)."""

    name: Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}$")]  # "2026-27"
    opener: date
    regular_season_end: date
    playoffs_end: date
    source: str = ""

    @model_validator(mode="after")
    def _order(self) -> Self:
        if not self.opener <= self.regular_season_end <= self.playoffs_end:
            raise ValueError(f"season {self.name}: opener <= regular_season_end <= playoffs_end, in that order")
        return self


class Waves(DefinitionModel):
    """Days before a season's opener each wave's jobs resume (scheduler-restore-manifest-2026.md:17,40,62)."""

    A: int = Field(default=14, ge=0, le=120)
    B: int = Field(default=7, ge=0, le=120)
    C: int = Field(default=3, ge=0, le=120)

    def days(self, wave: Wave | None) -> int:
        return 0 if wave is None else int(getattr(self, wave))


class LadderMode(DefinitionModel):
    """One prediction run mode: what the coordinator is asked to do, and its quality line."""

    description: str = ""
    min_quality_pct: float | None = Field(default=None, ge=0, le=100)
    source: str = ""


class Dispatcher(DefinitionModel):
    """The schedule dispatcher: one Cloud Scheduler tick feeds it; it runs whatever is due."""

    function: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")] = "schedule_dispatcher"
    tick_topic: TopicName = "schedule-dispatcher-tick"
    job: JobId = "schedule-dispatcher-tick"
    cron: Cron = "* * * * *"
    catch_up_minutes: int = Field(default=15, ge=1, le=1440)  # slots this far back still run (a late tick)
    lease_seconds: int = Field(default=300, ge=30, le=3600)  # a running slot's claim; then taken over
    runs_collection: str = "schedule_runs"
    jobs_collection: str = "schedule_jobs"
    response_excerpt_chars: int = Field(default=300, ge=0, le=2000)


def sensor_jobs(sensors: Sequence[Sensor]) -> tuple[Job, ...]:
    """One job per sensor slot: a ``TriggerTick`` (``{"trigger", "slot"}``) to the sensor's tick topic."""
    return tuple(
        Job(
            name=slot.job,
            cron=slot.cron,
            timezone=t.timezone,
            description=f"{t.name} sensor, slot {slot.name}" + (" (fallback)" if slot.fallback else ""),
            source=slot.source,
            wave=slot.wave,
            window=slot.window,
            pubsub=PubsubTarget(topic=t.tick_topic, body={"trigger": t.name, "slot": slot.name}),
        )
        for t in sensors
        for slot in t.slots
    )


def check_jobs(
    jobs: Sequence[Job],
    all_jobs: Sequence[Job],
    services: Mapping[str, Service],
    ladder: Mapping[str, LadderMode],
    dispatcher: Dispatcher,
    seasons: Sequence[Season],
    reserved_topics: Sequence[str] = (),
) -> None:
    """The jobs' references across sections, each error naming the job: its service, its mode,
    retries that outlast the dispatcher's catch-up window; and seasons that overlap."""
    for job in jobs:
        where = f"jobs ({job.name})"
        if job.http is not None and job.http.service not in services:
            raise ValueError(
                f"{where}: target service {job.http.service!r} is not defined in [services] (known: {sorted(services)})"
            )
        if job.mode is not None and job.mode not in ladder:
            raise ValueError(f"{where}: mode {job.mode!r} is not a [prediction_ladder] mode (known: {sorted(ladder)})")
        body = job.http.body if job.http else job.pubsub.body if job.pubsub else None
        if job.mode is None and "mode" in set(template_variables(body)):
            raise ValueError(f"{where}: its body uses ${{mode}} but the job has no `mode`")
    reserved = {dispatcher.tick_topic, *reserved_topics}
    for job in jobs:
        if job.pubsub is not None and job.pubsub.topic in reserved:
            raise ValueError(
                f"jobs ({job.name}): its topic {job.pubsub.topic!r} triggers the pipeline's own scheduled "
                "functions (the dispatcher's tick, a sensor's tick or a [schedules] topic); a sensor's runs "
                "belong in its [[sensors.slots]]"
            )
    catch_up = dispatcher.catch_up_minutes * 60
    for job in all_jobs:
        waits = sum(job.retry_base_seconds * 2**n for n in range(job.max_attempts - 1))
        if waits >= catch_up - 60:
            raise ValueError(
                f"jobs ({job.name}): its retries wait {waits} s in all; with a minute to spare that does not "
                f"fit the dispatcher's catch-up window ({catch_up} s): lower max_attempts or retry_base_seconds"
            )
    ordered = sorted(seasons, key=lambda s: s.opener)
    for earlier, later in itertools.pairwise(ordered):
        if later.opener <= earlier.playoffs_end:
            raise ValueError(f"seasons: {earlier.name} and {later.name} overlap")
