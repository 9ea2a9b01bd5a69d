"""The shared core of the phase-chaining functions.

Nothing heavy is imported here: every public name is declared in ``_LAZY`` and
loaded on first access (PEP 562). See ``shared._lazy``.
"""

from __future__ import annotations

from shared._lazy import attach

_LAZY = {
    "PipelineError": ".errors",
    "PermanentError": ".errors",
    "TransientError": ".errors",
    "MalformedMessageError": ".errors",
    "DefinitionError": ".errors",
    "ConfigError": ".errors",
    "InvalidDateError": ".errors",
    "InvalidGameIdError": ".errors",
    "Clock": ".clock",
    "SystemClock": ".clock",
    "FixedClock": ".clock",
    "today_et": ".clock",
    "resolve_game_date": ".clock",
    "parse_explicit_date": ".clock",
    "relation_to_today": ".clock",
    "PIPELINE_TZ": ".clock",
    "GameIdConverter": ".game_ids",
    "parse_game_id": ".game_ids",
    "NbaGameId": ".game_ids",
    "DateTeamsGameId": ".game_ids",
    "ScheduleEntry": ".game_ids",
    "NBA_TEAMS": ".game_ids",
    "get_logger": ".structured_log",
    "log_context": ".structured_log",
    "format_trace": ".structured_log",
    "require_env": ".env",
    "read_env": ".env",
    "project_id": ".env",
    "load_definition": ".pipeline.definition",
    "PipelineDefinition": ".pipeline.definition",
}

__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
