"""``phasectl publish completion``: a processor completion, shaped as the replaced system sends it."""

from __future__ import annotations

import argparse
import json
import uuid

from phasectl.connect import (
    BACKEND_ATTRIBUTE,
    PUBSUB,
)
from phasectl.core import Context, UsageError, _date, _processor, _user


def cmd_publish_completion(ctx: Context, args: argparse.Namespace) -> int:
    """Publish a completion shaped exactly as the replaced system's processors build it."""
    from shared.client.completion import build_completion

    canonical, phase_number = _processor(ctx, args.processor)
    phase = ctx.definition.phase(phase_number)
    day = _date(ctx, args.date)
    try:
        metadata = json.loads(args.metadata) if args.metadata else {}
    except ValueError as exc:
        raise UsageError(f"--metadata is not JSON: {exc}") from None
    if not isinstance(metadata, dict):
        raise UsageError("--metadata must be a JSON object")
    user = ctx.env.get("USER") or _user()
    try:
        message = build_completion(
            processor_name=args.processor,
            phase=f"phase_{phase.number}_{phase.name}",
            game_date=day,
            status=args.status,
            execution_id=f"phasectl-{uuid.uuid4().hex[:8]}",
            output_table=ctx.definition.processor(canonical).output_table,
            record_count=args.records,
            trigger_source="manual",
            error_message=args.error_message,
            error_type=args.error_type,
            metadata={**metadata, "published_by": f"phasectl publish completion ({user})"},
            now=ctx.now(),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    publisher = ctx.publisher()
    topic = publisher.topic_path(ctx.project, phase.completion_topic)
    future = publisher.publish(topic, json.dumps(message).encode("utf-8"))
    try:  # the publish call itself fails at the deadline: a second more for its batch to report it
        message_id = future.result(timeout=ctx.timeout + 1)
    except TimeoutError as exc:
        setattr(exc, BACKEND_ATTRIBUTE, ctx.backends.label(PUBSUB))
        raise
    ctx.audit(
        "publish completion",
        {"processor": args.processor, "date": day, "status": args.status, "records": args.records},
        f"message {message_id} on {phase.completion_topic}",
    )
    ctx.print(
        f"published {args.status} completion of {args.processor} ({canonical}, phase {phase.number}) for {day} "
        f"to {phase.completion_topic}: message {message_id}"
    )
    return 0
