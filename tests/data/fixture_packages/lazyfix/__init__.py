"""Fixture package: a lazy map with a working entry, a heavy entry and a broken entry."""

from shared._lazy import attach

_LAZY = {
    "light": ".light",
    "LIGHT_VALUE": ".light",
    "Heavy": ".heavy",
    "Missing": ".light",
}

__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
