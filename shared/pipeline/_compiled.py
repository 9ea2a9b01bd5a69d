"""The file format of the precompiled definition; a part of ``shared.pipeline.definition`` (use it from there).

``deploy build`` validates the TOML (same errors as ``read_definition``) and ships the validated
object next to it, pickled with the sha256 of the TOML it came from and the versions that made
it. A cold start then unpickles it (~0.3 ms; no validation, no pydantic schema build) instead of
validating (~25 ms). The TOML stays the single source: a file whose hash does not match, or
written by another Python/pydantic, is ignored and the TOML is validated as before. The file is
a build artifact inside the same bundle as the code that loads it (same trust as main.py).

Models are pickled by class and fields (``_rebuild_model``), the fields-set sorted, so the bytes
are the same in every process whatever its hash seed. Modules only the build or a load needs
(``pickle``, ``hashlib``, ``io``) are imported on first use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel

COMPILED_SUFFIX = ".compiled"
_COMPILED_FORMAT = 1


def compiled_path(toml_path: str | os.PathLike[str]) -> Path:
    """Where the precompiled form of ``toml_path`` lives (``pipeline.toml`` → ``pipeline.toml.compiled``)."""
    path = Path(toml_path)
    return path.with_name(path.name + COMPILED_SUFFIX)


def _stamp(raw: bytes) -> dict[str, Any]:
    import hashlib
    import sys

    import pydantic

    return {
        "format": _COMPILED_FORMAT,
        "toml_sha256": hashlib.sha256(raw).hexdigest(),
        "python": list(sys.version_info[:2]),
        "pydantic": pydantic.VERSION,
    }


def dump_compiled(raw: bytes, validated: BaseModel) -> bytes:
    """``validated`` (made from the TOML bytes ``raw``) with its stamp, as the precompiled file holds it."""
    import io
    import pickle

    buffer = io.BytesIO()
    _deterministic_pickler()(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump((_stamp(raw), validated))
    return buffer.getvalue()


def _rebuild_model(cls: type[BaseModel], fields: dict[str, Any], fields_set: tuple[str, ...]) -> BaseModel:
    """A validated model as ``BaseModel.__setstate__`` restores it (no validation; see dump_compiled)."""
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", fields)
    object.__setattr__(model, "__pydantic_fields_set__", set(fields_set))
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", None)
    return model


def _deterministic_pickler() -> type:
    import pickle

    class Pickler(pickle.Pickler):
        """Models reduce to (class, fields, sorted fields-set): pickling a model's own state would
        write its fields-set in hash order, which changes from run to run."""

        def reducer_override(self, obj: Any) -> Any:
            if isinstance(obj, BaseModel):
                fields = {k: v for k, v in obj.__dict__.items() if not k.startswith("_")}  # no caches
                return _rebuild_model, (type(obj), fields, tuple(sorted(obj.__pydantic_fields_set__)))
            return NotImplemented

    return Pickler


def read_compiled(toml_path: Path) -> object | None:
    """What the precompiled file beside ``toml_path`` holds, if it was made from exactly these TOML
    bytes by this Python and pydantic; otherwise ``None`` (the caller validates the TOML)."""
    import pickle

    try:
        blob = compiled_path(toml_path).read_bytes()
    except OSError:
        return None
    stamp: object
    validated: object
    try:
        stamp, validated = pickle.loads(blob)  # our own build artifact, shipped with the code
    except Exception:  # noqa: BLE001 - unreadable (another pydantic, truncated): validate the TOML instead
        return None
    try:
        raw = toml_path.read_bytes()
    except OSError:
        return None
    return validated if stamp == _stamp(raw) else None
