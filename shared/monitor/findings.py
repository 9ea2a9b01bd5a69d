"""What a monitor pass finds: ``Finding`` (deduplicated by ``shared.monitor.alerts``), the
``check_error`` finding of a check that raised, the ``check_timeout`` finding of a check that did
not finish within its share of the pass, and the ``MonitorReport`` of one pass."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

Severity = Literal["INFO", "WARNING", "ERROR", "CRITICAL"]
CHECK_ERROR_MAX_CHARS = 500


@dataclass(frozen=True)
class Finding:
    """One thing an operator should know. ``key`` identifies it across runs for deduplication."""

    kind: str
    severity: Severity
    message: str
    transition: str | None = None
    game_date: date | None = None
    details: dict[str, Any] = field(default_factory=dict)
    subject: str | None = None  # what else the finding is about (a check, a function), part of the key

    @property
    def key(self) -> str:
        parts = (self.kind, self.transition or "", str(self.game_date or ""), self.subject or "")
        return "__".join(x for x in parts if x)

    @property
    def fingerprint(self) -> str:
        """Changes when the substance changes (not the wording of times)."""
        return hashlib.sha256(json.dumps(self.details, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_error(
    what: str,
    exc: BaseException,
    *,
    transition: str | None = None,
    game_date: date | None = None,
    check: str | None = None,
) -> Finding:
    """The finding for a check (or one transition's date) that raised: the pass goes on (L23: a failing
    check is isolated, it never aborts the pass)."""
    text = f"{what}: check failed with {type(exc).__name__}: {' '.join(str(exc).split())}"
    if len(text) > CHECK_ERROR_MAX_CHARS:
        text = text[: CHECK_ERROR_MAX_CHARS - 1] + "…"
    return Finding(
        "check_error",
        "ERROR",
        text,
        transition,
        game_date,
        {"check": check or what, "error_type": type(exc).__name__},
        subject=check,
    )


def check_timeout(check: str, seconds: float, waiting_on: Sequence[str], *, at: str | None = None) -> Finding:
    """The finding for a check that did not finish within its share of the pass (L26: a hang is not an
    error: nothing raised, so the pass stopped waiting for it and went on with the other checks).

    ``waiting_on``: the backends of the calls it had in flight (``shared.deadline.in_flight``), else
    what it uses; ``at``: the item it was on (a transition's date). ERROR, as ``check_error``: the
    check's findings are missing from this pass either way.
    """
    backends = ", ".join(waiting_on) or "no backend"
    where = f" at {at}" if at else ""
    text = (
        f"{check}: no result within its {seconds:.1f} s share of the pass (stopped{where}, waiting on "
        f"{backends}); the other checks went on"
    )
    if len(text) > CHECK_ERROR_MAX_CHARS:
        text = text[: CHECK_ERROR_MAX_CHARS - 1] + "…"
    return Finding(
        "check_timeout",
        "ERROR",
        text,
        details={"check": check, "waiting_on": list(waiting_on)},
        subject=check,
    )


@dataclass
class MonitorReport:
    ran_at: datetime
    findings: list[Finding] = field(default_factory=list)
    triggered: list[str] = field(default_factory=list)
    dates_checked: int = 0
    # the monitor's first recorded pass (this one when none is recorded): kept in its heartbeat as
    # ``first_run_at``; ``None`` when it could not be read this pass (the recorded value is kept)
    up_since: datetime | None = None

    def merge(self, found: MonitorReport) -> None:
        """Add what a check found, as it is now (a check still running keeps adding to ``found``)."""
        self.findings += list(found.findings)
        self.triggered += list(found.triggered)
        self.dates_checked += found.dates_checked
        if found.up_since is not None:
            self.up_since = found.up_since

    @property
    def errors(self) -> int:
        """Checks (or transition dates) that raised in this pass."""
        return sum(1 for f in self.findings if f.kind == "check_error")

    @property
    def timeouts(self) -> int:
        """Checks that did not finish within their share of this pass."""
        return sum(1 for f in self.findings if f.kind == "check_timeout")
