"""shared.deferred: adapters built on first use, once, from any thread; all at once under SHARED_EAGER."""

from __future__ import annotations

import threading

import pytest

from shared._lazy import EAGER_ENV
from shared.deferred import Deferred, deferred_attribute


@pytest.fixture(autouse=True)
def lazy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the eager switch (CI also runs this file with SHARED_EAGER=1)."""
    monkeypatch.delenv(EAGER_ENV, raising=False)


class Holder:
    thing: deferred_attribute[list[int]] = deferred_attribute()

    def __init__(self, thing: list[int] | Deferred[list[int]]) -> None:
        self.thing = thing


def test_a_value_is_used_as_given() -> None:
    value = [1]
    holder = Holder(value)
    assert holder.thing is value


def test_a_deferred_value_is_built_on_first_read_only_once() -> None:
    calls: list[int] = []

    def build() -> list[int]:
        calls.append(1)
        return [len(calls)]

    deferred = Deferred(build)
    holder = Holder(deferred)
    assert calls == [] and not deferred.built
    assert holder.thing == [1] and holder.thing is holder.thing
    assert calls == [1] and deferred.built


def test_concurrent_first_reads_build_once() -> None:
    calls: list[int] = []
    gate = threading.Barrier(8)

    def build() -> list[int]:
        calls.append(1)
        return []

    holder = Holder(Deferred(build))
    seen: list[int] = []

    def read() -> None:
        gate.wait()
        seen.append(id(holder.thing))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1] and len(set(seen)) == 1


def test_assigning_replaces_the_value() -> None:
    holder = Holder(Deferred(lambda: [1]))
    holder.thing = [2]
    assert holder.thing == [2]


def test_the_eager_switch_builds_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """SHARED_EAGER=1: every Deferred is built when made, as an eager core would (CI proves each builds)."""
    monkeypatch.setenv(EAGER_ENV, "1")
    calls: list[int] = []
    deferred = Deferred(lambda: calls.append(1) or [len(calls)])
    assert calls == [1] and deferred.built
    assert Holder(deferred).thing == [1] and calls == [1]
