"""The local trigger wiring on the real Pub/Sub emulator: a push subscription with the deployment's
dead-letter policy, as ``phasectl local up`` creates it for every function (lesson L05)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deploy.local.emulators import LocalCloud
from deploy.local.topology import ensure_subscription

pytestmark = pytest.mark.integration


class _Failing(BaseHTTPRequestHandler):
    """A function that always fails: every push answers 500, so Pub/Sub redelivers."""

    attempts = 0

    def do_POST(self) -> None:
        type(self).attempts += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        del args  # keep the test output clean


@pytest.fixture
def failing_endpoint() -> Iterator[str]:
    _Failing.attempts = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_message_that_keeps_failing_is_dead_lettered_after_max_attempts(
    cloud: LocalCloud, unique: str, failing_endpoint: str
) -> None:
    from shared.gcp import publisher_client, subscriber_client

    publisher, subscriber = publisher_client(), subscriber_client()
    trigger, dead = f"trigger-{unique}", f"trigger-{unique}-dlq"
    for topic in (trigger, dead):
        publisher.create_topic(name=publisher.topic_path(cloud.project, topic))
    dlq_sub = ensure_subscription(subscriber, cloud.project, dead, f"dlq-sub-{unique}")
    ensure_subscription(
        subscriber,
        cloud.project,
        trigger,
        f"fn-trigger-{unique}",
        push_endpoint=failing_endpoint,
        dead_letter_topic=dead,
        max_delivery_attempts=5,
    )
    publisher.publish(publisher.topic_path(cloud.project, trigger), b'{"poison": true}').result(timeout=30)

    received: list[bytes] = []
    deadline = time.monotonic() + 120
    while not received and time.monotonic() < deadline:
        response = subscriber.pull(subscription=dlq_sub, max_messages=5, timeout=10, return_immediately=True)
        if response.received_messages:
            subscriber.acknowledge(subscription=dlq_sub, ack_ids=[m.ack_id for m in response.received_messages])
            received = [m.message.data for m in response.received_messages]
        else:
            time.sleep(0.5)
    assert received == [b'{"poison": true}'], f"not dead-lettered after {_Failing.attempts} push attempts"
    assert _Failing.attempts >= 5  # retried up to the policy's attempts first, not dropped
