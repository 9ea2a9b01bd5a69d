"""Nights that heal themselves (issue 27): postponed games are not missing games, self-heal
checkpoints re-trigger what never ran, gaps go to a rate-capped backfill queue, grading waits for
actuals. Modules load on use (no eager imports here)."""

from __future__ import annotations

from shared._lazy import attach

_LAZY: dict[str, str] = {}

__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
