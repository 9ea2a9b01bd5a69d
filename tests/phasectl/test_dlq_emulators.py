"""``phasectl dlq list|replay`` on the real Pub/Sub emulator, against messages that dead-lettered for real.

The setup is the deployment's wiring (``deploy.spec``): each function's trigger topic, its
dead-letter topic ``<trigger>-dlq`` and the pull subscription ``<function>-dlq-sub`` on it. The
function is a pull subscription on its trigger topic with a dead-letter policy (max 5 attempts)
that keeps nacking, so Pub/Sub itself moves the messages to the dead-letter topic.

The rig's definition gets its own ``[deploy] dead_letter_suffix`` so the dead-letter subscription
names (``<function>-dlq-<suffix>-sub``) are unique on the session's emulator.

What the emulator provides on a dead-lettered message (the module docstring of ``phasectl.dlq``):
a new message id and publish time, ``delivery_attempt`` 0 (the dead-letter subscription has no
dead-letter policy of its own), and the attributes ``CloudPubSubDeadLetterSourceDeliveryCount``,
``...SourceSubscription``, ``...SourceSubscriptionProject`` and ``...SourceTopicPublishTime``.
"""

from __future__ import annotations

import json
import os
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploy.local.emulators import LocalCloud
from deploy.local.topology import ensure_subscription, ensure_topic
from deploy.spec import DeploymentSpec, FunctionSpec, build_spec
from phasectl.dlq import DELIVERY_COUNT_ATTRIBUTE, REPLAY_ATTRIBUTE, preview
from shared.gcp import firestore_client, publisher_client, subscriber_client
from shared.pipeline.definition import read_definition
from tests.support.definition_files import isolated_definition_text
from tests.support.phasectl_run import Run, runner
from tests.support.rig import Rig

NOW = "2026-01-25T15:00:00Z"
FUNCTION = "phase2_to_phase3"
MAX_ATTEMPTS = 5
# what the failing function is sent: JSON, terminal escapes and newlines, bytes that are not UTF-8
POISON = [
    (b'{"poison": 1, "game_date": "2026-01-24"}', {"origin": "test", "n": "1"}),
    (b"\x1b[31mred\x1b[0m\r\nsecond line\x07 \xe2\x80\xae reversed", {"n": "2"}),
    (b"\xff\xfe\x00binary", {"n": "3"}),
]


@dataclass
class Dlq:
    rig: Rig
    spec: DeploymentSpec
    fn: FunctionSpec
    function_subscription: str  # the "function": a pull subscription that keeps failing
    run: Run

    @property
    def project(self) -> str:
        return self.rig.cloud.project

    def path(self, subscription: str) -> str:
        return str(subscriber_client().subscription_path(self.project, subscription))

    def peek(self, subscription: str) -> dict[str, Any]:
        """Message id → message on ``subscription`` right now, handed back at once (not consumed)."""
        subscriber = subscriber_client()
        seen: dict[str, Any] = {}
        leased: list[str] = []
        for _ in range(3):
            response = subscriber.pull(
                subscription=self.path(subscription), max_messages=50, timeout=10, return_immediately=True
            )
            for received in response.received_messages:
                leased.append(received.ack_id)
                seen.setdefault(received.message.message_id, received.message)
        if leased:
            subscriber.modify_ack_deadline(subscription=self.path(subscription), ack_ids=leased, ack_deadline_seconds=0)
        return seen

    def audit(self) -> list[dict[str, Any]]:
        docs = firestore_client(self.project).collection(self.rig.definition.pipeline.audit_collection).stream()
        return [d.to_dict() or {} for d in docs]


def _definition_text(suffix: str) -> str:
    text = isolated_definition_text(suffix)
    assert 'dead_letter_suffix = "-dlq"' in text
    return text.replace('dead_letter_suffix = "-dlq"', f'dead_letter_suffix = "-dlq-{suffix}"')


@pytest.fixture
def dlq(cloud: LocalCloud, unique: str, tmp_path: Path) -> Iterator[Dlq]:
    def mutate(data: dict[str, Any]) -> None:
        data["deploy"]["dead_letter_suffix"] = f"-dlq-{unique}"

    rig = Rig.create(cloud, unique, mutate=mutate)
    path = tmp_path / "pipeline.toml"
    path.write_text(_definition_text(unique))
    assert read_definition(path) == rig.definition  # the CLI process reads the same definition
    spec = build_spec(rig.definition, cloud.project)
    publisher, subscriber = publisher_client(), subscriber_client()
    for fn in spec.functions:  # the deployment's dead-letter topics and subscriptions
        ensure_topic(publisher, cloud.project, fn.trigger_topic)
        ensure_topic(publisher, cloud.project, fn.dead_letter_topic)
        ensure_subscription(subscriber, cloud.project, fn.dead_letter_topic, fn.dead_letter_subscription)
    fn = spec.function(FUNCTION)
    function_subscription = f"fn-{unique}"
    ensure_subscription(
        subscriber,
        cloud.project,
        fn.trigger_topic,
        function_subscription,
        ack_deadline_seconds=10,
        dead_letter_topic=fn.dead_letter_topic,
        max_delivery_attempts=MAX_ATTEMPTS,
    )
    env = {
        **{k: v for k, v in os.environ.items() if k != "PHASECTL_LOG_DIR"},
        **cloud.env(),
        "PIPELINE_DEFINITION": str(path),
        "PHASECTL_NOW": NOW,
        "USER": "ops-tester",
    }
    yield Dlq(rig, spec, fn, function_subscription, runner(env))
    for sub in [function_subscription, *(f.dead_letter_subscription for f in spec.functions)]:
        subscriber.delete_subscription(subscription=subscriber.subscription_path(cloud.project, sub))


def dead_letter_for_real(dlq: Dlq) -> dict[str, int]:
    """Publish the poison messages to the function's trigger topic and nack every delivery until
    Pub/Sub dead-letters them; returns the attempts the function saw per payload."""
    publisher, subscriber = publisher_client(), subscriber_client()
    topic = publisher.topic_path(dlq.project, dlq.fn.trigger_topic)
    for data, attributes in POISON:
        publisher.publish(topic, data, **attributes).result(timeout=30)
    attempts: Counter[bytes] = Counter()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        response = subscriber.pull(
            subscription=dlq.path(dlq.function_subscription), max_messages=10, timeout=10, return_immediately=True
        )
        if response.received_messages:
            for received in response.received_messages:
                attempts[received.message.data] = max(attempts[received.message.data], received.delivery_attempt)
            subscriber.modify_ack_deadline(  # the function fails: nack
                subscription=dlq.path(dlq.function_subscription),
                ack_ids=[m.ack_id for m in response.received_messages],
                ack_deadline_seconds=0,
            )
            continue
        if len(dlq.peek(dlq.fn.dead_letter_subscription)) == len(POISON):
            return dict(attempts)
        time.sleep(0.2)
    raise AssertionError(f"not dead-lettered: attempts {dict(attempts)}")


def pull_all(dlq: Dlq, subscription: str, quiet_seconds: float = 2.0) -> list[Any]:
    """Every message delivered to ``subscription`` until it stays quiet, acknowledged."""
    subscriber = subscriber_client()
    out: list[Any] = []
    quiet_until = time.monotonic() + quiet_seconds
    while time.monotonic() < quiet_until:
        response = subscriber.pull(
            subscription=dlq.path(subscription), max_messages=50, timeout=10, return_immediately=True
        )
        if response.received_messages:
            out += [m.message for m in response.received_messages]
            subscriber.acknowledge(
                subscription=dlq.path(subscription), ack_ids=[m.ack_id for m in response.received_messages]
            )
            quiet_until = time.monotonic() + quiet_seconds
        else:
            time.sleep(0.2)
    return out


def _control_free(text: str) -> bool:
    return not any(unicodedata.category(ch)[0] == "C" and ch != "\n" for ch in text)


# -- unit -------------------------------------------------------------------------------------------
def test_preview_is_one_short_line_without_control_characters() -> None:
    assert preview(b'{"a": 1}') == '{"a": 1}'
    shown = preview(b"\x1b[31mred\x1b[0m\r\n\tnext\x00 \xe2\x80\xae\xff end")
    assert _control_free(shown) and "\n" not in shown and "\x1b" not in shown
    assert "red" in shown and "next" in shown and "end" in shown
    long = preview(b"x" * 10_000)
    assert len(long) == 80 and long.endswith("\N{HORIZONTAL ELLIPSIS}")
    assert preview(b"") == ""


# -- integration ------------------------------------------------------------------------------------
@pytest.mark.integration
def test_dead_lettered_messages_are_listed_with_their_attempts_and_not_consumed(dlq: Dlq) -> None:
    attempts = dead_letter_for_real(dlq)
    assert attempts == {data: MAX_ATTEMPTS for data, _ in POISON}  # the function saw each one 5 times
    waiting = dlq.peek(dlq.fn.dead_letter_subscription)
    # what the emulator adds when it dead-letters (documented in phasectl/dlq.py)
    for message in waiting.values():
        assert message.attributes[DELIVERY_COUNT_ATTRIBUTE] == str(MAX_ATTEMPTS)
        assert message.attributes["CloudPubSubDeadLetterSourceSubscription"] == dlq.function_subscription

    listed = dlq.run("dlq", "list", "--function", FUNCTION, "--json")
    assert listed.returncode == 1, listed.stderr  # something found
    data = json.loads(listed.stdout)
    assert data["total"] == len(POISON)
    (section,) = data["subscriptions"]
    assert section["subscription"] == dlq.fn.dead_letter_subscription and section["more"] is False
    messages = {m["message_id"]: m for m in section["messages"]}
    assert set(messages) == set(waiting)
    by_data = {bytes(waiting[i].data): m for i, m in messages.items()}
    for payload, attributes in POISON:
        m = by_data[payload]
        assert m["function"] == FUNCTION
        assert m["delivery_attempts"] == MAX_ATTEMPTS
        assert m["source_subscription"] == dlq.function_subscription
        assert m["size"] == len(payload)
        assert attributes.items() <= m["attributes"].items()
        assert datetime.fromisoformat(m["first_published"]) <= datetime.fromisoformat(m["dead_lettered_at"])
        assert _control_free(m["preview"])
    assert by_data[POISON[0][0]]["preview"] == POISON[0][0].decode()

    text = dlq.run("dlq", "list", "--function", FUNCTION)
    assert text.returncode == 1, text.stderr
    assert _control_free(text.stdout) and "\x1b" not in text.stdout
    for message_id in waiting:
        assert message_id in text.stdout
    assert f"{len(POISON)} message(s) on {dlq.fn.dead_letter_subscription}" in text.stdout
    assert f"phasectl dlq replay --function {FUNCTION}" in text.stdout

    everything = dlq.run("dlq", "list", "--json")  # every function's subscription; only one holds anything
    assert everything.returncode == 1, everything.stderr
    sections = json.loads(everything.stdout)["subscriptions"]
    assert {s["function"]: s["count"] for s in sections} == {
        fn.name: len(POISON) if fn is dlq.fn else 0 for fn in dlq.spec.functions
    }
    empty = dlq.run("dlq", "list", "--function", "phase5_to_phase6")
    assert empty.returncode == 0, empty.stdout + empty.stderr
    assert "0 dead-lettered message(s) in 1 subscription(s)" in empty.stdout

    # listing consumed nothing, and nothing reached the trigger topic
    assert set(dlq.peek(dlq.fn.dead_letter_subscription)) == set(waiting)
    assert pull_all(dlq, dlq.function_subscription, quiet_seconds=0.5) == []
    assert dlq.audit() == []  # listing is not audited: it changes nothing


@pytest.mark.integration
def test_replay_republishes_each_message_once_to_the_trigger_topic_and_acks_it(dlq: Dlq) -> None:
    dead_letter_for_real(dlq)
    dead = dlq.peek(dlq.fn.dead_letter_subscription)

    dry = dlq.run("dlq", "replay", "--function", FUNCTION, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"dry run: {len(POISON)} message(s) would be replayed" in dry.stdout
    assert set(dlq.peek(dlq.fn.dead_letter_subscription)) == set(dead)

    first = dlq.run("dlq", "replay", "--function", FUNCTION, "--max", "2")
    assert first.returncode == 1, first.stdout + first.stderr  # one left
    assert "2 message(s) replayed" in first.stdout and "more are waiting beyond --max" in first.stdout
    assert len(dlq.peek(dlq.fn.dead_letter_subscription)) == 1
    rest = dlq.run("dlq", "replay", "--function", FUNCTION)
    assert rest.returncode == 0, rest.stdout + rest.stderr
    assert "1 message(s) replayed" in rest.stdout
    again = dlq.run("dlq", "replay", "--function", FUNCTION)
    assert again.returncode == 0 and "0 message(s) replayed" in again.stdout
    assert dlq.peek(dlq.fn.dead_letter_subscription) == {}

    # exactly once on the trigger topic (the function's subscription gets it again), with its attributes
    replayed = pull_all(dlq, dlq.function_subscription)
    assert Counter(bytes(m.data) for m in replayed) == Counter(data for data, _ in POISON)
    for message in replayed:
        attributes = dict(message.attributes)
        assert attributes[REPLAY_ATTRIBUTE] == dlq.fn.dead_letter_subscription
        assert attributes[DELIVERY_COUNT_ATTRIBUTE] == str(MAX_ATTEMPTS)
        original = next(a for d, a in POISON if d == bytes(message.data))
        assert original.items() <= attributes.items()

    audit = [d for d in dlq.audit() if d["command"] == "dlq replay"]
    # PHASECTL_NOW: the three records share their "when"
    assert sorted(d["result"] for d in audit) == ["replayed 0 of 0", "replayed 1 of 1", "replayed 2 of 2"]
    ids = [r["dlq_message_id"] for d in audit for r in d["args"]["replayed"]]
    assert sorted(ids) == sorted(dead)
    assert sorted(r["message_id"] for d in audit for r in d["args"]["replayed"]) == sorted(
        m.message_id for m in replayed
    )
    retention = dlq.rig.definition.retention
    for doc in audit:
        assert doc["who"] == "ops-tester" and doc["args"]["topic"] == dlq.fn.trigger_topic
        assert doc[retention.expiry_field] - doc["when"] == timedelta(days=retention.audit_days)


@pytest.mark.integration
def test_a_replay_whose_publish_fails_leaves_the_messages_on_the_dlq(dlq: Dlq) -> None:
    dead_letter_for_real(dlq)
    dead = dlq.peek(dlq.fn.dead_letter_subscription)
    publisher = publisher_client()
    publisher.delete_topic(topic=publisher.topic_path(dlq.project, dlq.fn.trigger_topic))

    failed = dlq.run("dlq", "replay", "--function", FUNCTION)
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert failed.stderr.count("\n") == 1 and "phasectl: error: publishing message" in failed.stderr
    assert set(dlq.peek(dlq.fn.dead_letter_subscription)) == set(dead)  # nothing acked
    (doc,) = dlq.audit()
    assert doc["command"] == "dlq replay" and doc["result"].startswith("replayed 0 of 3; publishing message")


@pytest.mark.integration
def test_bad_input_is_one_line_and_exit_2(dlq: Dlq) -> None:
    for args, expected in [
        (("dlq", "replay", "--function", "phase9_to_phase10"), "unknown function 'phase9_to_phase10'"),
        (("dlq", "list", "--function", "nope"), "unknown function 'nope'"),
        (("dlq", "replay", "--function", FUNCTION, "--max", "0"), "0 is not in 1..1000"),
        (("dlq", "replay"), "--function"),
    ]:
        proc = dlq.run(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stderr.count("\n") == 1 and expected in proc.stderr, (args, proc.stderr)
    # the Cloud Functions name works too
    assert dlq.run("dlq", "list", "--function", dlq.fn.cloud_name).returncode == 0
