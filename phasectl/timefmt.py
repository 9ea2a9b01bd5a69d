"""One time zone in every human output: the pipeline's (ET for America/New_York) with its offset.

Operators read times at 2 a.m. against the league's clock, so every text line, table and page
shows instants in the definition's ``[pipeline] timezone``; ``phasectl --utc`` switches all of
them to UTC. ``--json`` keeps ISO 8601 instants (machine output has no display zone).

    >>> from datetime import UTC, date, datetime
    >>> view = TimeView.of("America/New_York")
    >>> view.stamp(datetime(2026, 1, 25, 6, 12, 28, tzinfo=UTC))
    '2026-01-25 01:12 ET'
    >>> view.stamp(datetime(2026, 1, 25, 6, 12, 28, tzinfo=UTC), seconds=True)
    '2026-01-25 01:12:28 ET'
    >>> view.clock(datetime(2026, 1, 25, 6, 12, tzinfo=UTC), day=date(2026, 1, 24))
    '01:12 ET'
    >>> view.zone_note(datetime(2026, 1, 25, 6, 12, tzinfo=UTC))
    'ET = UTC−05:00'
    >>> TimeView.of("America/New_York", utc=True).stamp(datetime(2026, 1, 25, 6, 12, tzinfo=UTC))
    '2026-01-25 06:12 UTC'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

# short names operators use; any other zone is shown by its IANA key
ZONE_LABELS: Mapping[str, str] = {
    "America/New_York": "ET",
    "America/Chicago": "CT",
    "America/Denver": "MT",
    "America/Los_Angeles": "PT",
    "UTC": "UTC",
    "Etc/UTC": "UTC",
}


def zone_label(zone: ZoneInfo) -> str:
    return ZONE_LABELS.get(zone.key, zone.key)


def offset_of(instant: datetime, zone: ZoneInfo) -> str:
    """``UTC−05:00`` (a real minus sign): the zone's offset at ``instant``."""
    offset = aware(instant).astimezone(zone).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "\N{MINUS SIGN}"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def aware(value: datetime) -> datetime:
    """A naive datetime is UTC (BigQuery TIMESTAMP rows and Firestore values come back aware)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TimeView:
    """How instants are shown: in ``zone`` (the pipeline's) or, with ``utc``, in UTC."""

    zone: ZoneInfo
    utc: bool = False

    @classmethod
    def of(cls, timezone: str, *, utc: bool = False) -> TimeView:
        return cls(ZoneInfo(timezone), utc)

    @property
    def shown_zone(self) -> ZoneInfo:
        return ZoneInfo("UTC") if self.utc else self.zone

    @property
    def label(self) -> str:
        return zone_label(self.shown_zone)

    def local(self, instant: datetime) -> datetime:
        return aware(instant).astimezone(self.shown_zone)

    def stamp(self, instant: datetime | None, *, seconds: bool = False, missing: str = "-") -> str:
        """``2026-01-25 01:12 ET`` (``--utc``: ``2026-01-25 06:12 UTC``); ``missing`` for None."""
        if instant is None:
            return missing
        local = self.local(instant)
        text = f"{local:%Y-%m-%d %H:%M:%S}" if seconds else f"{local:%Y-%m-%d %H:%M}"
        return f"{text} {self.label}"

    def clock(self, instant: datetime | None, *, day: date | None = None, missing: str = "-") -> str:
        """``01:12 ET``; with the date (``Jan 27 01:12 ET``) unless it is ``day`` or the night after."""
        if instant is None:
            return missing
        local = self.local(instant)
        near = day is not None and local.date() in (day, day + timedelta(days=1))
        return f"{local:%H:%M} {self.label}" if near else f"{local:%b %d %H:%M} {self.label}"

    def zone_note(self, instant: datetime) -> str:
        """``ET = UTC−05:00`` (the offset at ``instant``), or ``UTC``: for a report's header."""
        return "UTC" if self.utc else f"{self.label} = {offset_of(instant, self.zone)}"

    def header_now(self, now: datetime) -> str:
        """``now 2026-01-25 01:12 ET, UTC−05:00`` (``--utc``: ``now 2026-01-25 06:12 UTC``): a report's header."""
        return f"now {self.stamp(now)}" + ("" if self.utc else f", {offset_of(now, self.zone)}")
