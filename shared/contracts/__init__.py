"""Message contracts: pydantic models, Pub/Sub event decoding, JSON Schemas. Lazy: see ``shared._lazy``."""

from __future__ import annotations

from shared._lazy import attach

_LAZY = {
    "ContractModel": ".messages",
    "CompletionStatus": ".messages",
    "ErrorType": ".messages",
    "TriggerStatus": ".messages",
    "ProcessorCompletion": ".messages",
    "PhaseTrigger": ".messages",
    "MonitorTick": ".messages",
    "RetryTick": ".messages",
    "ScheduleTick": ".messages",
    "RetryRequest": ".messages",
    "TriggerTick": ".messages",
    "TimedTriggerMessage": ".messages",
    "GateOutcome": ".messages",
    "make_trigger_id": ".messages",
    "PubSubMessage": ".decode",
    "extract_pubsub_message": ".decode",
    "decode_payload": ".decode",
    "decode_event": ".decode",
    "decode_completion": ".decode",
    "decode_monitor_tick": ".decode",
    "decode_retry_tick": ".decode",
    "CONTRACTS": ".schemas",
    "render_schemas": ".schemas",
    "write_schemas": ".schemas",
    "check_schemas": ".schemas",
}

__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
