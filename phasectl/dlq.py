"""``phasectl dlq list|replay``: what the dead-letter subscriptions hold, and putting it back.

Every function's trigger subscription dead-letters a message after ``[deploy]
max_delivery_attempts`` failed deliveries to ``<trigger topic>-dlq``, where the pull subscription
``<function>-dlq-sub`` keeps it for ``dead_letter_retention``. Names come from ``deploy.spec``,
the model ``phasectl deploy`` creates them from.

``list`` pulls without consuming: it pulls (``return_immediately``) until the subscription has
nothing more to give, keeping each message leased so no message is seen twice, then hands every
message back at once (``modify_ack_deadline`` 0). ``replay`` republishes each message (data and
attributes, plus ``replayed_from_dlq``) to the function's trigger topic and acknowledges it on the
dead-letter subscription only once the publish has succeeded, so a failure leaves it where it was.

Delivery attempts: Pub/Sub sets ``delivery_attempt`` only on deliveries from a subscription that
itself has a dead-letter policy, which a dead-letter subscription has not (it is 0 here). When it
dead-letters a message Pub/Sub adds attributes instead, and the Pub/Sub emulator adds the same
four (checked with the emulator shipped with Google Cloud CLI 528.0.0):

* ``CloudPubSubDeadLetterSourceDeliveryCount``: the attempts on the source subscription ("5");
* ``CloudPubSubDeadLetterSourceSubscription``: the source subscription's id (not its path);
* ``CloudPubSubDeadLetterSourceSubscriptionProject``: its project;
* ``CloudPubSubDeadLetterSourceTopicPublishTime``: when the message was first published
  (RFC 3339). The dead-lettered copy has a new message id and its own publish time (when it was
  dead-lettered).

A replayed message keeps these attributes (the consumer may log them) and gets
``replayed_from_dlq`` = the dead-letter subscription; if it fails again, Pub/Sub overwrites them.
"""

from __future__ import annotations

import argparse
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from phasectl.argtypes import bounded_int
from shared.clock import rfc3339
from shared.errors import PipelineError

if TYPE_CHECKING:
    import google.cloud.pubsub_v1 as pubsub_v1

    from deploy.spec import FunctionSpec
    from phasectl.core import Context

DELIVERY_COUNT_ATTRIBUTE = "CloudPubSubDeadLetterSourceDeliveryCount"
SOURCE_SUBSCRIPTION_ATTRIBUTE = "CloudPubSubDeadLetterSourceSubscription"
SOURCE_PUBLISH_TIME_ATTRIBUTE = "CloudPubSubDeadLetterSourceTopicPublishTime"
REPLAY_ATTRIBUTE = "replayed_from_dlq"
LIST_LIMIT = 1_000  # messages per subscription that `list` shows (the summary says when there are more)
REPLAY_MAX_DEFAULT = 100
REPLAY_MAX_LIMIT = 1_000
PREVIEW_CHARS = 80
PULL_BATCH = 100
EMPTY_PULLS = 2  # a return_immediately pull may come back empty while messages remain (real Pub/Sub)
ACK_BATCH = 500


class DlqError(PipelineError):
    """Bad input or a failed replay: phasectl prints it as one line and exits 2."""


@dataclass(frozen=True)
class DeadLetter:
    """One message on a dead-letter subscription, leased by ``ack_id`` until released or acked."""

    function: str
    subscription: str
    message_id: str
    dead_lettered_at: datetime | None  # the copy's publish time: when it reached the dead-letter topic
    attributes: dict[str, str]
    data: bytes
    delivery_attempt: int  # as Pub/Sub reports it on this delivery (0 without a dead-letter policy)
    ack_id: str

    @property
    def attempts(self) -> int | None:
        """Deliveries on the function's trigger subscription before it was dead-lettered."""
        try:
            return int(self.attributes[DELIVERY_COUNT_ATTRIBUTE])
        except (KeyError, ValueError):
            return self.delivery_attempt or None

    @property
    def first_published(self) -> str | None:
        return self.attributes.get(SOURCE_PUBLISH_TIME_ATTRIBUTE)

    def as_dict(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "subscription": self.subscription,
            "message_id": self.message_id,
            "first_published": self.first_published,
            "dead_lettered_at": _iso(self.dead_lettered_at),
            "delivery_attempts": self.attempts,
            "source_subscription": self.attributes.get(SOURCE_SUBSCRIPTION_ATTRIBUTE),
            "attributes": dict(sorted(self.attributes.items())),
            "size": len(self.data),
            "preview": preview(self.data),
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else rfc3339(value, "milliseconds")  # as Pub/Sub writes it


def preview(data: bytes, limit: int = PREVIEW_CHARS) -> str:
    """A one-line, control-character-free beginning of ``data`` (safe to print on a terminal).

    Whitespace runs become one space; every other control, format or unassigned character (ESC,
    NUL, bidi overrides, ...) and undecodable bytes become U+FFFD.
    """
    text = data[: limit * 4].decode("utf-8", "replace")
    out: list[str] = []
    for ch in text:
        if ch.isspace():
            if out and out[-1] != " ":
                out.append(" ")
            continue
        out.append("\N{REPLACEMENT CHARACTER}" if unicodedata.category(ch)[0] == "C" else ch)
    line = "".join(out).strip()
    if len(line) > limit or len(data) > limit * 4:
        line = line[: limit - 1].rstrip() + "\N{HORIZONTAL ELLIPSIS}"
    return line


# -- Pub/Sub --------------------------------------------------------------------------------------
def _functions(ctx: Context, name: str | None) -> list[FunctionSpec]:
    from deploy.spec import build_spec

    spec = build_spec(ctx.definition, ctx.project)
    if name is None:
        return list(spec.functions)
    try:
        return [spec.function(name)]
    except KeyError:
        known = ", ".join(fn.name for fn in spec.functions)
        raise DlqError(f"unknown function {name!r} (known: {known})") from None


def _pull(
    subscriber: pubsub_v1.SubscriberClient, path: str, fn: FunctionSpec, limit: int
) -> tuple[list[DeadLetter], bool]:
    """Up to ``limit`` messages, each leased (not consumed), and whether more are waiting.

    Pulls until the subscription has nothing more to give or one message over ``limit`` arrived;
    the leases keep a message from coming back within one listing (and a repeat is handed back).
    """
    got: dict[str, DeadLetter] = {}
    extra: list[str] = []  # ack ids handed back at once: a repeat, or more than asked for
    empty = 0
    while empty < EMPTY_PULLS and len(got) <= limit:
        response = subscriber.pull(
            subscription=path, max_messages=min(PULL_BATCH, limit + 1 - len(got)), timeout=30, return_immediately=True
        )
        if not response.received_messages:
            empty += 1
            continue
        for received in response.received_messages:
            message = received.message
            if message.message_id in got or len(got) > limit:
                extra.append(received.ack_id)
                continue
            got[message.message_id] = DeadLetter(
                function=fn.name,
                subscription=fn.dead_letter_subscription,
                message_id=message.message_id,
                dead_lettered_at=message.publish_time or None,
                attributes=dict(message.attributes),
                data=bytes(message.data),
                delivery_attempt=int(received.delivery_attempt or 0),
                ack_id=received.ack_id,
            )
    messages = list(got.values())
    extra += [m.ack_id for m in messages[limit:]]
    release(subscriber, path, extra)
    return messages[:limit], len(messages) > limit


def release(subscriber: pubsub_v1.SubscriberClient, path: str, ack_ids: Sequence[str]) -> None:
    """Hand leased messages back: deliverable again at once (a nack)."""
    for start in range(0, len(ack_ids), ACK_BATCH):
        subscriber.modify_ack_deadline(
            subscription=path, ack_ids=list(ack_ids[start : start + ACK_BATCH]), ack_deadline_seconds=0
        )


def _exists(subscriber: pubsub_v1.SubscriberClient, path: str) -> bool:
    from google.api_core import exceptions as gexc

    try:
        subscriber.get_subscription(subscription=path)
    except gexc.NotFound:
        return False
    return True


def _rows(messages: Sequence[DeadLetter]) -> list[tuple[Any, ...]]:
    return [
        (
            m.function,
            m.message_id,
            m.first_published or "-",
            _iso(m.dead_lettered_at) or "-",
            m.attempts if m.attempts is not None else "-",
            len(m.data),
            preview(m.data) or "-",
        )
        for m in messages
    ]


HEADERS = ("FUNCTION", "MESSAGE ID", "FIRST PUBLISHED", "DEAD-LETTERED", "ATTEMPTS", "BYTES", "DATA")


# -- commands -------------------------------------------------------------------------------------
def dlq_list(ctx: Context, args: argparse.Namespace) -> int:
    """0: every dead-letter subscription is empty; 1: messages are waiting (or a subscription is missing)."""
    from phasectl.report import format_table

    functions = _functions(ctx, args.function)
    subscriber = ctx.subscriber()  # bounded by --timeout
    sections: list[dict[str, Any]] = []
    messages: list[DeadLetter] = []
    missing: list[str] = []
    for fn in functions:
        path = subscriber.subscription_path(ctx.project, fn.dead_letter_subscription)
        if not _exists(subscriber, path):
            missing.append(fn.dead_letter_subscription)
            sections.append({"function": fn.name, "subscription": fn.dead_letter_subscription, "exists": False})
            continue
        found, more = _pull(subscriber, path, fn, LIST_LIMIT)
        try:
            messages += found
            sections.append(
                {
                    "function": fn.name,
                    "subscription": fn.dead_letter_subscription,
                    "trigger_topic": fn.trigger_topic,
                    "exists": True,
                    "count": len(found),
                    "more": more,
                    "messages": [m.as_dict() for m in found],
                }
            )
        finally:
            release(subscriber, path, [m.ack_id for m in found])
    problem = bool(messages) or bool(missing)
    if args.json:
        ctx.dump({"version": 1, "command": "dlq list", "total": len(messages), "subscriptions": sections})
        return 1 if problem else 0
    if messages:
        ctx.print(format_table(HEADERS, _rows(messages)))
    for section in sections:
        if not section["exists"]:
            ctx.print(f"{section['function']}: dead-letter subscription {section['subscription']} does not exist")
        elif section["count"]:
            beyond = f" (the first {LIST_LIMIT}; more are waiting)" if section["more"] else ""
            ctx.print(
                f"{section['function']}: {section['count']} message(s) on {section['subscription']}{beyond}; "
                f"phasectl dlq replay --function {section['function']} puts them back on {section['trigger_topic']}"
            )
    ctx.print(
        f"{len(messages)} dead-lettered message(s) in {len(functions) - len(missing)} subscription(s)"
        + (f"; {len(missing)} missing (phasectl deploy apply creates them)" if missing else "")
    )
    return 1 if problem else 0


_max = bounded_int("count", REPLAY_MAX_LIMIT)


def dlq_replay(ctx: Context, args: argparse.Namespace) -> int:
    """0: everything replayed (or nothing to do, or a dry run); 1: messages left over ``--max``;
    2: a publish failed (what was replayed before it is acked and audited; the rest stays)."""
    from phasectl.report import format_table

    (fn,) = _functions(ctx, args.function)
    subscriber = ctx.subscriber()  # bounded by --timeout
    path = subscriber.subscription_path(ctx.project, fn.dead_letter_subscription)
    if not _exists(subscriber, path):
        raise DlqError(f"dead-letter subscription {fn.dead_letter_subscription} does not exist")
    pulled, more = _pull(subscriber, path, fn, args.max)
    if args.dry_run:
        release(subscriber, path, [m.ack_id for m in pulled])
        if pulled:
            ctx.print(format_table(HEADERS, _rows(pulled)))
        ctx.print(
            f"dry run: {len(pulled)} message(s) would be replayed from {fn.dead_letter_subscription} "
            f"to {fn.trigger_topic}" + ("; more are waiting beyond --max" if more else "")
        )
        return 0
    publisher = ctx.publisher()  # bounded by --timeout
    topic = publisher.topic_path(ctx.project, fn.trigger_topic)
    replayed: list[tuple[str, str]] = []
    failure: str | None = None
    try:
        for message in pulled:
            attributes = {**message.attributes, REPLAY_ATTRIBUTE: fn.dead_letter_subscription}
            try:
                new_id = str(publisher.publish(topic, message.data, **attributes).result(timeout=60))
            except Exception as exc:  # noqa: BLE001 - reported, audited; the message stays on the DLQ
                failure = f"publishing message {message.message_id} to {fn.trigger_topic} failed: {exc}"
                break
            # only now: a crash before this line leaves the message on the DLQ (replayed at most twice;
            # the functions are idempotent on redelivery, lesson L03)
            subscriber.acknowledge(subscription=path, ack_ids=[message.ack_id])
            replayed.append((message.message_id, new_id))
    finally:
        done = {dlq_id for dlq_id, _ in replayed}
        release(subscriber, path, [m.ack_id for m in pulled if m.message_id not in done])
    left = len(pulled) - len(replayed)
    result = f"replayed {len(replayed)} of {len(pulled)}" + (f"; {failure}" if failure else "")
    ctx.audit(
        "dlq replay",
        {
            "function": fn.name,
            "subscription": fn.dead_letter_subscription,
            "topic": fn.trigger_topic,
            "max": args.max,
            "replayed": [{"dlq_message_id": old, "message_id": new} for old, new in replayed],
        },
        result,
    )
    for old, new in replayed:
        ctx.print(f"replayed {old} from {fn.dead_letter_subscription} to {fn.trigger_topic} as message {new}")
    ctx.print(
        f"{len(replayed)} message(s) replayed to {fn.trigger_topic}"
        + (f"; {left} left on {fn.dead_letter_subscription}" if left else "")
        + ("; more are waiting beyond --max" if more else "")
    )
    if failure:
        raise DlqError(failure)  # one line, exit 2
    return 1 if more else 0


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """``phasectl dlq list|replay`` under ``sub`` (phasectl's subcommands)."""
    dlq = sub.add_parser("dlq", help="the functions' dead-letter subscriptions: list (without consuming), replay")
    dsub = dlq.add_subparsers(dest="dlq_command", required=True, parser_class=parser_class)
    p = dsub.add_parser("list", help="per message: function, id, publish time, delivery attempts, a data preview")
    p.add_argument("--function", help="only this function's dead-letter subscription")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=dlq_list)
    p = dsub.add_parser("replay", help="republish to the function's trigger topic; ack each only once published")
    p.add_argument("--function", required=True)
    p.add_argument(
        "--max", type=_max, default=REPLAY_MAX_DEFAULT, help=f"at most N messages (default {REPLAY_MAX_DEFAULT})"
    )
    p.add_argument("--dry-run", action="store_true", help="show what would be replayed; change nothing")
    p.set_defaults(func=dlq_replay)
