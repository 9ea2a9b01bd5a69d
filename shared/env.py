"""Environment validation at function start: fail once, naming every problem.

A function checks its settings before doing any work, so a misconfigured deployment
fails on its first request with one ``ConfigError`` that lists *all* missing or
invalid variables, instead of one at a time, deep inside a run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from shared.errors import ConfigError

__all__ = ["LOG_DIR_ENV", "PROJECT_ENV_VARS", "project_id", "read_env", "require_env"]

PROJECT_ENV_VARS: Final = ("GOOGLE_CLOUD_PROJECT", "GCP_PROJECT", "GCLOUD_PROJECT")
"""Variables naming the Google Cloud project, in order of precedence."""

LOG_DIR_ENV: Final = "PHASECTL_LOG_DIR"
"""Where the local cloud's functions write ``function-<name>.log`` (set by ``phasectl local up``,
read by ``phasectl health``)."""


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def _unique(names: Sequence[str] | Mapping[str, object], what: str) -> list[str]:
    if isinstance(names, str):
        raise TypeError(f"{what} must be a sequence of variable names, not the string {names!r}")
    return list(dict.fromkeys(names))


def require_env(names: Sequence[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the values of the required variables, or fail naming every missing one.

    A variable that is unset, empty or only whitespace counts as missing. Values are
    returned with surrounding whitespace stripped (a trailing newline from a mounted
    secret is a classic bug).

    Args:
        names: the required variable names (duplicates are ignored).
        environ: the environment to read; defaults to ``os.environ``.

    Returns:
        ``{name: value}`` in the order of ``names``.

    Raises:
        ConfigError: one or more variables are missing or empty; ``missing`` lists them all.
        TypeError: ``names`` is a single string.
    """
    env = _environ(environ)
    wanted = _unique(names, "names")
    values: dict[str, str] = {}
    missing: list[str] = []
    for name in wanted:
        value = (env.get(name) or "").strip()
        if value:
            values[name] = value
        else:
            missing.append(name)
    if missing:
        raise ConfigError(f"missing or empty required environment variable(s): {', '.join(missing)}", missing=missing)
    return values


def read_env(spec: Mapping[str, Callable[[str], Any]], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read and convert required variables, reporting every problem at once.

    Each value (stripped) is passed to its parser; a parser rejects a value by raising
    ``ValueError`` or ``TypeError``. This function does not put values in the error (one
    may be a secret), only the parser's own message.

    Example: ``read_env({"BUCKET": str, "MAX_AGE_MINUTES": int})``.

    Args:
        spec: variable name → parser.
        environ: the environment to read; defaults to ``os.environ``.

    Returns:
        ``{name: parsed value}`` in the order of ``spec``.

    Raises:
        ConfigError: with ``missing`` (unset/empty names) and ``invalid`` (name → reason).
    """
    env = _environ(environ)
    missing: list[str] = []
    invalid: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name in _unique(spec, "spec"):
        raw = (env.get(name) or "").strip()
        if not raw:
            missing.append(name)
            continue
        try:
            values[name] = spec[name](raw)
        except (ValueError, TypeError) as exc:
            invalid[name] = f"{type(exc).__name__}: {exc}"
    if missing or invalid:
        problems = []
        if missing:
            problems.append(f"missing or empty: {', '.join(missing)}")
        if invalid:
            problems.append("invalid: " + "; ".join(f"{name} ({reason})" for name, reason in invalid.items()))
        raise ConfigError("bad environment variable(s): " + " | ".join(problems), missing=missing, invalid=invalid)
    return values


def project_id(environ: Mapping[str, str] | None = None) -> str:
    """Return the Google Cloud project id from the environment.

    Looks at ``GOOGLE_CLOUD_PROJECT``, then ``GCP_PROJECT``, then ``GCLOUD_PROJECT``;
    the first non-empty one wins.

    Raises:
        ConfigError: none of them is set.
    """
    env = _environ(environ)
    for name in PROJECT_ENV_VARS:
        value = (env.get(name) or "").strip()
        if value:
            return value
    raise ConfigError(
        f"no Google Cloud project id: set one of {', '.join(PROJECT_ENV_VARS)}", checked=list(PROJECT_ENV_VARS)
    )
