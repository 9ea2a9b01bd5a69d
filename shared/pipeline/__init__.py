"""The pipeline definition (single source of truth). Lazy: see ``shared._lazy``."""

from __future__ import annotations

from shared._lazy import attach

_LAZY = {
    "PipelineDefinition": ".definition",
    "Transition": ".definition",
    "Phase": ".definition",
    "Processor": ".definition",
    "Mode": ".definition",
    "ModeWhen": ".definition",
    "Rule": ".definition",
    "DeadlineTier": ".definition",
    "CountsPolicy": ".definition",
    "load_definition": ".definition",
    "read_definition": ".definition",
    "parse_definition": ".definition",
    "DEFAULT_DEFINITION_PATH": ".definition",
}

__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
