"""PEP 562 lazy attribute loading for the ``shared`` packages.

Each package declares its public names as *data*: a module-level literal dict
``_LAZY = {"PublicName": ".submodule", ...}``. ``attach`` turns that map into the
package's ``__getattr__``, ``__dir__`` and ``__all__``. Because the map is a
literal, the bundler reads it with ``ast`` to include only the submodule that
defines a name (lesson L16).

First access is thread-safe (gen2 Cloud Functions serve concurrent requests):
resolution happens under a per-package lock and the resolved value is cached in
the package namespace, so later accesses never reach ``__getattr__``.

Setting ``SHARED_EAGER=1`` resolves every entry at package import, which CI uses
to catch a broken lazy entry before it reaches a function.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

EAGER_ENV = "SHARED_EAGER"

# Top-level module → the pip package that provides it; used to name the missing
# optional package in a clear ImportError.
_PIP_NAMES: Mapping[str, str] = {
    "google.cloud.bigquery": "google-cloud-bigquery",
    "google.cloud.firestore": "google-cloud-firestore",
    "google.cloud.firestore_v1": "google-cloud-firestore",
    "google.cloud.pubsub": "google-cloud-pubsub",
    "google.cloud.pubsub_v1": "google-cloud-pubsub",
    "functions_framework": "functions-framework",
    "cloudevents": "cloudevents",
    "pydantic": "pydantic",
    "pandas": "pandas",
    "requests": "requests",
}


def eager_requested() -> bool:
    """True when ``SHARED_EAGER`` asks every lazy entry to load at import."""
    return os.environ.get(EAGER_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _pip_name(missing: str) -> str | None:
    for module, pip_name in _PIP_NAMES.items():
        if missing == module or missing.startswith(module + "."):
            return pip_name
    return None


def attach(package: str, lazy: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """Build ``__getattr__``, ``__dir__`` and ``__all__`` for ``package``.

    Args:
        package: the package's ``__name__``.
        lazy: public name → relative submodule (``".clock"``) that defines it.
            A name equal to its submodule (``{"clock": ".clock"}``) exports the
            submodule itself.

    Returns:
        ``(__getattr__, __dir__, __all__)`` to assign in the package. With ``SHARED_EAGER`` set, every
        entry is resolved before this returns.
    """
    names = sorted(lazy)
    lock = threading.RLock()

    def __getattr__(name: str) -> Any:
        if name not in lazy:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        pkg_ns = sys.modules[package].__dict__
        with lock:
            if name in pkg_ns:  # resolved by another thread while we waited
                return pkg_ns[name]
            target = lazy[name]
            try:
                module = importlib.import_module(target, package)
            except ModuleNotFoundError as exc:
                missing = exc.name or ""
                pip_name = _pip_name(missing)
                if pip_name is None or missing.startswith(package):
                    raise
                raise ImportError(
                    f"{package}.{name} needs the optional package {pip_name!r} "
                    f"(module {missing!r} is not installed); install it with: pip install {pip_name}",
                    name=missing,
                ) from exc
            if target.lstrip(".").rsplit(".", 1)[-1] == name:
                value: Any = module
            else:
                try:
                    value = getattr(module, name)
                except AttributeError as exc:
                    raise ImportError(
                        f"lazy map of {package!r} says {name!r} is defined in {module.__name__!r}, "
                        "but that module has no such attribute"
                    ) from exc
            pkg_ns[name] = value
            return value

    def __dir__() -> list[str]:
        return list(names)

    if eager_requested():  # the eager switch: every entry now, with the package already able to answer
        module = sys.modules[package]
        module.__dict__.update(__getattr__=__getattr__, __dir__=__dir__, __all__=list(names))
        for name in names:
            getattr(module, name)
    return __getattr__, __dir__, list(names)
