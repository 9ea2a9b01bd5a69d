"""shared.deferred: adapters built on first use, once, from any thread."""

from __future__ import annotations

import threading

from shared.deferred import Deferred, deferred_attribute


class Holder:
    thing: deferred_attribute[list[int]] = deferred_attribute()

    def __init__(self, thing: list[int] | Deferred[list[int]]) -> None:
        self.thing = thing


def test_a_value_is_used_as_given() -> None:
    value = [1]
    holder = Holder(value)
    assert holder.thing is value
    assert Holder.thing.is_built(holder)


def test_a_deferred_value_is_built_on_first_read_only_once() -> None:
    calls: list[int] = []

    def build() -> list[int]:
        calls.append(1)
        return [len(calls)]

    holder = Holder(Deferred(build))
    assert calls == [] and not Holder.thing.is_built(holder)
    assert holder.thing == [1] and holder.thing is holder.thing
    assert calls == [1] and Holder.thing.is_built(holder)


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
