"""The trigger messages of one decision: what each real consumer reads, pure (no I/O).

One ``PhaseTrigger`` per transition and date, or, for a transition whose consumer runs one
source table per message (``[transitions.delivery] per_source_table``), one per completed
processor's table, all with the same ``trigger_id``. The HTTP body of a transition that also
calls its consumer (``[transitions.delivery.http]``) is built here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from shared.contracts.messages import PhaseTrigger, TriggerStatus, make_trigger_id
from shared.pipeline.definition import PipelineDefinition, Transition

_GATE_KEYS = ("gate", "kind", "verdict", "value", "thresholds", "advisory", "reason", "details")


def source_tables(definition: PipelineDefinition, processors_done: Sequence[str]) -> list[str]:
    """The output tables of the completed processors (sorted, each once)."""
    tables = {definition.processor(name).output_table for name in processors_done}
    return sorted(t for t in tables if t)


def build_triggers(
    definition: PipelineDefinition,
    transition: Transition,
    *,
    game_date: date,
    generation: int,
    status: TriggerStatus,
    reason: str,
    mode: str | None,
    processors_done: Sequence[str],
    correlation_id: str | None,
    missing_games: Sequence[str],
    now: datetime,
    gates: Sequence[Mapping[str, Any]] = (),
    postponed_games: Sequence[str] = (),
    trigger_source: str | None = None,
) -> list[PhaseTrigger]:
    """The messages to publish for one trigger (one, or one per source table)."""
    completion = transition.completion
    common: dict[str, Any] = {
        "trigger_id": make_trigger_id(transition.name, game_date, generation, mode),
        "transition": transition.name,
        "source_phase": transition.source_phase,
        "target_phase": transition.target_phase,
        "game_date": game_date,
        "analysis_date": game_date,
        "target_date": game_date if completion and completion.target_date_key == "target_date" else None,
        "mode": mode,
        "status": status,
        "reason": reason,
        "generation": generation,
        "correlation_id": correlation_id,
        "triggered_by": f"phasechain:{transition.name}",
        "triggered_at": now,
        "processors_completed": list(processors_done),
        "missing_games": list(missing_games),
        "postponed_games": list(postponed_games),
        "trigger_source": trigger_source or "orchestrator",
        "export_types": list(completion.export_types) if completion else [],
        "gates": [{k: g[k] for k in _GATE_KEYS if k in g} for g in gates],
    }
    tables = source_tables(definition, processors_done) if transition.delivery.per_source_table else []
    if not tables:
        return [PhaseTrigger(**common)]
    return [
        PhaseTrigger(**common, source_table=table, output_table=table, part=i, parts=len(tables))
        for i, table in enumerate(tables, start=1)
    ]


def http_body(trigger: PhaseTrigger) -> dict[str, Any]:
    """The body of the consumer's HTTP start call, as the replaced orchestrator sends it
    (phase4_to_phase5/main.py:1660-1705: game_date, correlation_id, trigger_source), plus the
    ``trigger_id`` so the consumer can act once per trigger."""
    return {
        "game_date": trigger.game_date.isoformat(),
        "correlation_id": trigger.correlation_id or trigger.trigger_id,
        "trigger_source": trigger.trigger_source,
        "triggered_by": trigger.triggered_by,
        "trigger_id": trigger.trigger_id,
    }
