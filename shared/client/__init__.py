"""The processor-side client: publish a completion, act once per ``trigger_id``.

A processor imports only this package; its closure is the standard library plus
google-cloud-pubsub (``publish_completion``) or google-cloud-firestore (``TriggerInbox``),
each imported on first use. Lazy: see ``shared._lazy``.
"""

from __future__ import annotations

from shared._lazy import attach

_LAZY = {
    "build_completion": ".completion",
    "publish_completion": ".completion",
    "phase_string": ".completion",
    "COMPLETION_STATUSES": ".completion",
    "TriggerInbox": ".inbox",
    "Delivery": ".inbox",
}

__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
