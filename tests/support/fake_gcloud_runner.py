"""The fake Google Cloud CLI answered in this process: a ``deploy.apply`` runner for the deploy tests.

The installed ``gcloud``/``bq`` scripts run ``fake_gcloud.run_command`` in a new process per call; the
apply/verify tests run thousands of commands, so they call the same function directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from deploy.apply import Result
from tests.support import fake_gcloud


def in_process_runner(env: Mapping[str, str], cwd: Path) -> Callable[[Sequence[str]], Result]:
    def run(argv: Sequence[str]) -> Result:
        program = os.path.basename(argv[0])
        code, out, err = fake_gcloud.run_command(
            [program, *argv[1:]], env[fake_gcloud.STATE_ENV], env[fake_gcloud.LOG_ENV], str(cwd)
        )
        return Result(code, out, err)

    return run
