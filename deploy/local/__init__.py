"""Local real backends (emulators) for tests, the demo and ``phasectl local``. Lazy."""

from __future__ import annotations

from shared._lazy import attach

_LAZY = {
    "LocalCloud": ".emulators",
    "EmulatorUnavailableError": ".emulators",
    "provision": ".emulators",
    "free_port": ".emulators",
}

__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
