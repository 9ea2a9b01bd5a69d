"""Helpers for tests of the definition's validation, and the once-per-slot trigger the timed-trigger
tests share (what the packaged phase 6 export runs were before they became ``[[jobs]]``)."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from typing import Any

import pytest

from shared.errors import DefinitionError
from shared.pipeline.definition import (
    DEFAULT_DEFINITION_PATH,
    PipelineDefinition,
    TimedTrigger,
    TriggerSlot,
    parse_definition,
)


def packaged_toml() -> dict[str, Any]:
    """A fresh, mutable copy of the packaged definition as parsed TOML."""
    return tomllib.loads(DEFAULT_DEFINITION_PATH.read_text(encoding="utf-8"))


def parse(data: Mapping[str, Any]) -> PipelineDefinition:
    return parse_definition(copy.deepcopy(dict(data)))


def rejected(data: Mapping[str, Any], *fragments: str) -> str:
    """The definition is rejected, and the error names every fragment."""
    with pytest.raises(DefinitionError) as info:
        parse(data)
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    return text


def exports_trigger(
    topic: str = "nba-phase6-export-trigger", tick_topic: str = "scheduled-trigger-tick"
) -> TimedTrigger:
    """A once-per-slot trigger without conditions, with the old phase 6 export runs' names, crons and
    dates. ``TimedTriggerService`` still supports the mechanism."""
    return TimedTrigger(
        name="phase6_exports",
        description="phase 6 export runs at fixed times",
        topic=topic,
        tick_topic=tick_topic,
        function="scheduled_triggers",
        trigger_source="scheduler",
        once_per="slot",
        slots=(
            TriggerSlot(
                name="daily_results",
                cron="0 5 * * *",
                job="phase6-daily-results",
                date="yesterday",
                export_types=("results", "performance", "best-bets", "predictions", "admin-dashboard", "admin-picks"),
                update_latest=True,
            ),
            TriggerSlot(
                name="tonight_picks",
                cron="0 13 * * *",
                job="phase6-tonight-picks",
                date="today",
                export_types=("tonight", "tonight-players", "best-bets-all", "best-bets-today"),
            ),
            TriggerSlot(
                name="clv_reexport",
                cron="30 16 * * *",
                job="phase6-clv-reexport",
                date="today",
                export_types=("signal-best-bets",),
            ),
        ),
    )
