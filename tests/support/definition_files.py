"""Definition *files* for processes that read ``PIPELINE_DEFINITION`` (entrypoints, servers).

``tests.support.rig.isolated_definition`` builds an isolated definition in memory; a
function process can only be given a path. ``write_isolated_definition`` writes a TOML
file that parses to the same definition, by applying the same renames to the text of
the packaged ``pipeline.toml`` (the stdlib has no TOML writer). A test asserts
``read_definition(path) == isolated_definition(suffix)`` so the two cannot drift.
"""

from __future__ import annotations

import re
from pathlib import Path

from shared.pipeline.definition import DEFAULT_DEFINITION_PATH
from tests.support.rig import GATE_DATASETS

_TOPIC_LINE = re.compile(
    r'^(\s*(?:completion_topic|trigger_topic|retry_topic|tick_topic|topic)\s*=\s*")([^"]+)(")', re.MULTILINE
)


def _sub(pattern: str, repl: str, text: str, what: str) -> str:
    new, count = re.subn(pattern, repl, text, flags=re.MULTILINE)
    if count == 0:
        raise AssertionError(
            f"write_isolated_definition: no {what} found in {DEFAULT_DEFINITION_PATH}; "
            "update tests/support/definition_files.py to match tests/support/rig.py:isolated_definition"
        )
    return new


def isolated_definition_text(suffix: str, source: str | None = None) -> str:
    """The packaged definition's TOML text with the renames of ``isolated_definition(suffix)``."""
    text = source if source is not None else DEFAULT_DEFINITION_PATH.read_text()
    # table refs first: `nba_orchestration.game_unavailable` must not be seen as the dataset
    text = _sub(
        r'^(\s*unavailable_table\s*=\s*")[A-Za-z_][A-Za-z0-9_]*(\.game_unavailable")',
        rf"\g<1>orch_{suffix}\g<2>",
        text,
        "games.unavailable_table",
    )
    text = _sub(
        r'^(\s*(?:schedule_table|table)\s*=\s*")nba_raw(\.[A-Za-z0-9_]+")',
        rf"\g<1>raw_{suffix}\g<2>",
        text,
        "schedule/boxscore table refs",
    )
    # [heal.gaps] outputs name phase 2's raw tables inline: the rig's raw dataset too
    text = _sub(r'(\{ phase = 2, table = ")nba_raw(\.[A-Za-z0-9_]+")', rf"\g<1>raw_{suffix}\g<2>", text, "gap outputs")
    for dataset, short in GATE_DATASETS.items():  # the tables the phase 3→4 and 4→5 gates read
        text = _sub(rf'(")({dataset})(\.[A-Za-z0-9_]+")', rf"\g<1>{short}_{suffix}\g<3>", text, dataset)
    text = _sub(r'^(\s*dataset\s*=\s*")[^"]*(")', rf"\g<1>orch_{suffix}\g<2>", text, "pipeline.dataset")
    text = _sub(r'^(\s*state_collection\s*=\s*")[^"]*(")', rf"\g<1>transitions_{suffix}\g<2>", text, "state_collection")
    text = _sub(
        r'^(\s*quarantine_collection\s*=\s*")[^"]*(")',
        rf"\g<1>quarantine_{suffix}\g<2>",
        text,
        "quarantine_collection",
    )
    text = _sub(r'^(\s*outbox_collection\s*=\s*")[^"]*(")', rf"\g<1>outbox_{suffix}\g<2>", text, "outbox_collection")
    for key in ("heartbeat_collection", "alert_collection"):
        text = _sub(rf'^(\s*{key}\s*=\s*")([^"]*)(")', rf"\g<1>\g<2>_{suffix}\g<3>", text, key)
    text, topics = _TOPIC_LINE.subn(rf"\g<1>\g<2>-{suffix}\g<3>", text)
    if topics == 0:
        raise AssertionError(f"write_isolated_definition: no topic lines found in {DEFAULT_DEFINITION_PATH}")
    return text


def write_isolated_definition(suffix: str, path: str | Path) -> Path:
    """Write a TOML file equivalent to ``isolated_definition(suffix)`` to ``path``; returns it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(isolated_definition_text(suffix))
    return target
