"""DEMO STAND-INS for the data processors this package does not contain.

The real scrapers, analytics, precompute and prediction processors live elsewhere. On the
local cloud these stand-ins play them: they answer each phase trigger by publishing that
phase's completion messages after a short delay, and answer each ``RetryRequest`` from
auto-retry by re-running (publishing a success or a failure). Failures are configurable
per processor. Nothing here is deployed: it is only imported by the demo and its test.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from shared.clock import Clock
from shared.contracts.messages import PhaseTrigger, RetryRequest
from shared.localcloud.topology import pull_now
from shared.pipeline.definition import PipelineDefinition


@dataclass(frozen=True)
class Failure:
    """How a stand-in processor fails: on the nightly run, on auto-retry re-runs, or both."""

    message: str
    nightly: bool = True
    retries: bool = True
    error_type: str = "transient"  # transient: auto-retry retries it; permanent: failed_permanent at once


class StandinProcessors:
    """Stand-in processors wired to the trigger and retry topics of ``definition``."""

    def __init__(
        self,
        definition: PipelineDefinition,
        project: str,
        clock: Clock,
        *,
        failures: Mapping[tuple[str, date], Failure] | None = None,
        delay_seconds: float = 0.3,
        say: Callable[[str], None] | None = None,
        phase5_completion_pct: float = 96.4,
        phase5_predictions: int = 412,
    ) -> None:
        from shared.gcp import publisher_client, subscriber_client

        self.definition = definition
        self.project = project
        self.clock = clock
        self.failures = dict(failures or {})
        self.delay = delay_seconds
        self.say = say or (lambda _text: None)
        self.pct, self.predictions = phase5_completion_pct, phase5_predictions
        self.publisher, self.subscriber = publisher_client(), subscriber_client()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._subscriptions: dict[str, tuple[str, int | None]] = {}  # path → (kind, phase)
        self.errors: list[str] = []

    # -- wiring ----------------------------------------------------------------------------
    def start(self) -> StandinProcessors:
        from shared.localcloud.topology import ensure_subscription

        suffix = uuid.uuid4().hex[:6]
        for phase in self.definition.phases:
            if phase.trigger_topic and any(t.source_phase == phase.number for t in self.definition.transitions):
                path = ensure_subscription(
                    self.subscriber, self.project, phase.trigger_topic, f"standin-phase{phase.number}-{suffix}"
                )
                self._subscriptions[path] = ("trigger", phase.number)
            if phase.retry_topic:
                path = ensure_subscription(
                    self.subscriber, self.project, phase.retry_topic, f"standin-retry{phase.number}-{suffix}"
                )
                self._subscriptions[path] = ("retry", phase.number)
        self._thread = threading.Thread(target=self._loop, name="standin-processors", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _loop(self) -> None:
        while not self._stop.is_set():
            idle = True
            for path, (kind, phase) in self._subscriptions.items():
                try:
                    messages = pull_now(self.subscriber, path)
                except Exception as exc:  # noqa: BLE001 - reported; the emulator may be stopping
                    if not self._stop.is_set():
                        self.errors.append(f"pull {path}: {exc}")
                    continue
                idle = idle and not messages
                for data in messages:
                    self._handle(kind, phase, data)
            if idle:
                self._stop.wait(0.25)

    def _handle(self, kind: str, phase: int | None, data: bytes) -> None:
        if kind == "trigger" and phase is not None:
            trigger = PhaseTrigger.model_validate_json(data)
            time.sleep(self.delay)
            self.run_phase(phase, trigger.game_date, trigger.correlation_id)
            return
        request = RetryRequest.model_validate_json(data)
        failure = self.failures.get((request.processor_name, request.game_date))
        why = f" (fallback for {request.fallback_for})" if request.fallback_for else ""
        if failure is not None and failure.retries:
            self.say(f"stand-in {request.processor_name} re-run {request.attempt}{why}: failed — {failure.message}")
            self.publish(
                request.phase,
                request.processor_name,
                request.game_date,
                status="failed",
                error_type=failure.error_type,
                error_message=failure.message,
                record_count=0,
            )
        else:
            self.say(f"stand-in {request.processor_name} re-run {request.attempt}{why}: success")
            self.publish(request.phase, request.processor_name, request.game_date)

    # -- publishing --------------------------------------------------------------------------
    def processors(self, phase: int) -> list[str]:
        transition = self.definition.transition_from(phase)
        names: list[str] = []
        for _, expected, critical, optional in transition.processor_sets():
            for name in (*expected, *critical, *optional):
                if name not in names:
                    names.append(name)
        return names

    def run_phase(self, phase: int, game_date: date, correlation_id: str | None = None) -> None:
        """Every processor of ``phase`` reports for ``game_date`` (failing ones as configured)."""
        for name in self.processors(phase):
            failure = self.failures.get((name, game_date))
            if failure is not None and failure.nightly:
                self.publish(
                    phase,
                    name,
                    game_date,
                    correlation_id,
                    status="failed",
                    error_type=failure.error_type,
                    error_message=failure.message,
                    record_count=0,
                )
                self.say(f"stand-in {name} (phase {phase}, {game_date}): failed — {failure.message}")
            elif self.definition.transition_from(phase).completion is not None:
                self.publish(
                    phase, name, game_date, correlation_id, completion_pct=self.pct, record_count=self.predictions
                )
                self.say(
                    f"stand-in {name} (phase {phase}, {game_date}): {self.pct:g}% with {self.predictions} predictions"
                )
            else:
                self.publish(phase, name, game_date, correlation_id)
                self.say(f"stand-in {name} (phase {phase}, {game_date}): success")

    def publish(
        self, phase: int, processor: str, game_date: date, correlation_id: str | None = None, **extra: Any
    ) -> None:
        body = {
            "processor_name": processor,
            "phase": phase,
            "execution_id": f"{processor}-{uuid.uuid4().hex[:8]}",
            "correlation_id": correlation_id or f"night-{game_date}",
            "game_date": game_date.isoformat(),
            "status": extra.pop("status", "success"),
            "record_count": extra.pop("record_count", 240),
            "timestamp": self.clock.now().isoformat(),
            **extra,
        }
        topic = self.publisher.topic_path(self.project, self.definition.phase(phase).completion_topic)
        self.publisher.publish(topic, json.dumps(body).encode()).result(timeout=30)
