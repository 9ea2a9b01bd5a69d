"""The one way to build something on first use: a wait event builds none of what it does not call.

Cold start: an adapter (and the client library behind it) is built on first use, so a function
invocation that never calls it never pays for it. ``Deferred(factory)`` holds a zero-argument
factory and builds its value once, on the first ``get()`` (thread-safe: gen2 functions serve
concurrent requests). ``deferred_attribute()`` is a descriptor for an instance attribute that
may be given either the value itself (tests inject instances) or a ``Deferred`` (composition
roots pass factories, so the module that defines the adapter, and the client library behind it,
load only when the attribute is first read). An adapter that may build its client late takes
``Client | Deferred[Client]``: it never guesses whether a callable is a factory or a client.

``SHARED_EAGER=1`` (the eager switch of ``shared._lazy``) builds every ``Deferred`` at once, as
an eager core would: CI proves every adapter can be built, and the bundle benchmark's eager
variant measures what the lazy core saves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from shared._lazy import eager_requested

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Deferred(Generic[T_co]):
    """A value built by ``factory`` on first ``get()``, once (read-only, hence covariant: a
    ``Deferred[Client]`` is a ``Deferred[Client | None]``)."""

    def __init__(self, factory: Callable[[], T_co]) -> None:
        self._factory: Callable[[], T_co] | None = factory
        self._value: T_co | None = None
        self._lock = threading.Lock()
        if eager_requested():
            self.get()

    @property
    def built(self) -> bool:
        return self._factory is None

    def get(self) -> T_co:
        if self._factory is not None:
            with self._lock:
                if self._factory is not None:
                    self._value = self._factory()
                    self._factory = None
        return self._value  # type: ignore[return-value]


class deferred_attribute(Generic[T]):
    """An instance attribute holding a value or a ``Deferred`` of one; reads always give the value."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_deferred_{name}"
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> deferred_attribute[T]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        try:
            value = obj.__dict__[self.slot]
        except KeyError:
            raise AttributeError(self.name) from None
        return value.get() if isinstance(value, Deferred) else value

    def __set__(self, obj: object, value: T | Deferred[T]) -> None:
        obj.__dict__[self.slot] = value
