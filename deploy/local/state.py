"""What ``phasectl local up`` started, in ``<state dir>/state.json``: read by ``down``, other terminals and
the stand-ins' command line (kept apart from ``deploy.local.stack`` so the stand-ins need not import it)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"
DEFAULT_STATE_DIR = Path(".localcloud")


@dataclass
class StackState:
    """What ``up`` started: written to ``<state dir>/state.json`` for ``down`` and other terminals."""

    owner_pid: int
    project: str
    env: dict[str, str]
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → {pid, port, url, log}
    emulators: dict[str, int] = field(default_factory=dict)
    started_at: str = ""
    standins: dict[str, dict[str, str]] = field(default_factory=dict)  # service → {url, url_env}
    standin_log: str = ""  # every stand-in request, one JSON line each (python -m deploy.local.standins requests)

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / STATE_FILE
        path.write_text(json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def read(cls, directory: Path) -> StackState | None:
        path = directory / STATE_FILE
        if not path.is_file():
            return None
        return cls(**json.loads(path.read_text()))
