"""The page's colours, in one place: the grid's cells, the legend and the timeline's marks use them.

Partial is amber and blocked red at every place they are drawn (issue 28: a partial trigger drawn
light green read as "all good").
"""

from __future__ import annotations

from collections.abc import Mapping

# state -> (background, text colour); the legend and the CSS are generated from this map.
# "triggered" is a complete trigger; "partial" and "deadline" are triggered cells too (their
# class stays ``state-triggered``, the kind is ``data-kind``): told apart by colour and label.
STATE_COLOURS: Mapping[str, tuple[str, str]] = {
    "triggered": ("#2e7d32", "#ffffff"),
    "partial": ("#ffa000", "#1a1a1a"),  # amber: triggered, but not with everything
    "deadline": ("#6a1b9a", "#ffffff"),
    "ready": ("#1565c0", "#ffffff"),
    "wait": ("#546e7a", "#ffffff"),  # blue-grey: nothing wrong yet, distinct from partial's amber
    "blocked": ("#c62828", "#ffffff"),
    "none": ("#bdbdbd", "#1a1a1a"),
}
STATE_LABELS: Mapping[str, str] = {
    "triggered": "triggered: complete",
    "partial": "triggered: partial",
    "deadline": "triggered: deadline tier or fallback",
    "ready": "ready",
    "wait": "wait",
    "blocked": "blocked",
    "none": "no data yet",
}
# a trigger record's ``status`` -> the kind drawn (transitions: complete / partial /
# deadline_exceeded; sensors and scheduled triggers: complete / fallback / scheduled)
TRIGGER_KINDS: Mapping[str, str] = {
    "complete": "triggered",
    "scheduled": "triggered",
    "partial": "partial",
    "deadline_exceeded": "deadline",
    "fallback": "deadline",
}

# a trigger record's ``status`` -> its colour (the timeline's trigger marks: the cell's colour of that kind)
KIND_COLOURS: Mapping[str, str] = {status: STATE_COLOURS[kind][0] for status, kind in TRIGGER_KINDS.items()}
