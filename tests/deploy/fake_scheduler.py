"""The commands of the scheduler drift checks that ``tests/support/fake_gcloud.py`` does not simulate.

``gcloud scheduler jobs list|delete|pause|resume`` (verify lists the region's jobs; its fix commands
delete a zombie and resume a paused job) and ``gcloud run services describe|add-iam-policy-binding``
(apply checks that a Cloud Run service a job calls exists, then lets the dispatcher invoke it). Each
is answered on the same state file as the fake, with its strictness (an unknown flag is exit 2, a
missing job ``NOT_FOUND``), and logged like the fake's own calls; every other command goes to the
fake. ``runner`` is a ``deploy.apply`` runner, like ``tests/support/fake_gcloud_runner.py``'s.
"""

from __future__ import annotations

import fcntl
import marshal
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from deploy.apply import Result
from tests.support import fake_gcloud
from tests.support.fake_gcloud import Args, Cloud, Fail, _add_member, _emit, dumps

Handler = Callable[[Cloud, Args], str]


def _job(cloud: Cloud, args: Args) -> dict[str, Any]:
    cloud.check_project(args)
    location = args.need("location")
    (name,) = args.positional
    job = cloud.s["jobs"].get(name)
    if job is None or job["location"] != location:
        raise Fail(1, f"ERROR: NOT_FOUND: Job not found: projects/{cloud.project}/locations/{location}/jobs/{name}")
    described: dict[str, Any] = job["described"]
    return described


def jobs_list(cloud: Cloud, args: Args) -> str:
    cloud.check_project(args)
    location = args.need("location")
    listed = [j["described"] for _, j in sorted(cloud.s["jobs"].items()) if j["location"] == location]
    return _emit(listed, args.get("format"))


def jobs_delete(cloud: Cloud, args: Args) -> str:
    _job(cloud, args)
    del cloud.s["jobs"][args.positional[0]]
    return ""


def jobs_pause(cloud: Cloud, args: Args) -> str:
    _job(cloud, args)["state"] = "PAUSED"
    return ""


def jobs_resume(cloud: Cloud, args: Args) -> str:
    described = _job(cloud, args)
    if described.get("state") != "PAUSED":  # as the API: only a paused job resumes
        raise Fail(1, f"ERROR: FAILED_PRECONDITION: Job is in state {described.get('state')}, not PAUSED")
    described["state"] = "ENABLED"
    return ""


def _service(cloud: Cloud, args: Args) -> str:
    cloud.check_project(args)
    args.need("region")
    (service,) = args.positional
    if service not in cloud.s["run_iam"]:
        raise Fail(1, f"ERROR: NOT_FOUND: Cannot find service [{service}]")
    return service


def run_describe(cloud: Cloud, args: Args) -> str:
    service = _service(cloud, args)
    return _emit({"metadata": {"name": service}}, args.get("format"))


def run_binding(cloud: Cloud, args: Args) -> str:
    service = _service(cloud, args)
    member = args.need("member")
    if member.startswith("serviceAccount:") and member.endswith(f"@{cloud.project}.iam.gserviceaccount.com"):
        if member.split(":", 1)[1] not in cloud.s["service_accounts"]:
            raise Fail(1, f"ERROR: INVALID_ARGUMENT: Service account {member} does not exist.")
    return _emit(_add_member(cloud.s["run_iam"][service], args.need("role"), member), None)


EXTRA: dict[tuple[str, ...], Handler] = {
    ("scheduler", "jobs", "list"): jobs_list,
    ("scheduler", "jobs", "delete"): jobs_delete,
    ("scheduler", "jobs", "pause"): jobs_pause,
    ("scheduler", "jobs", "resume"): jobs_resume,
    ("run", "services", "describe"): run_describe,
    ("run", "services", "add-iam-policy-binding"): run_binding,
}


def _handler(argv: Sequence[str]) -> tuple[Handler, list[str], str] | None:
    if not argv or os.path.basename(argv[0]) != "gcloud":
        return None
    words = [t for t in argv[1:] if not t.startswith("--")]
    handler = EXTRA.get(tuple(words[:3]))
    if handler is None:
        return None
    rest = list(argv[1:])
    for word in words[:3]:
        rest.remove(word)
    return handler, rest, "gcloud." + ".".join(words[:3])


def run_command(argv: Sequence[str], state_path: str, log_path: str, cwd: str) -> tuple[int, str, str]:
    """One command: one of ``EXTRA`` on the fake's state (locked, logged as the fake logs), else the fake's."""
    found = _handler(argv)
    if found is None:
        program = os.path.basename(argv[0])
        return fake_gcloud.run_command([program, *argv[1:]], state_path, log_path, cwd)
    handler, rest, name = found
    with open(state_path, "r+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        state = marshal.load(handle)
        code, out, err = 0, "", ""
        try:
            if state.get("auth", "ok") != "ok":
                raise Fail(1, fake_gcloud.NO_ACCOUNT)
            args = Args(rest)
            out = handler(Cloud(state, cwd), args)
            args.done(name)
        except Fail as exc:
            code, err = exc.returncode, exc.message + "\n"
        if code == 0:
            handle.seek(0)
            handle.truncate()
            marshal.dump(state, handle)
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(dumps({"argv": ["gcloud", *argv[1:]], "returncode": code}) + "\n")
    return code, out, err


def runner(env: Mapping[str, str], cwd: Path) -> Callable[[Sequence[str]], Result]:
    """A ``deploy.apply`` runner: the fake, plus the commands above, answered in this process."""

    def run(argv: Sequence[str]) -> Result:
        return Result(*run_command(argv, env[fake_gcloud.STATE_ENV], env[fake_gcloud.LOG_ENV], str(cwd)))

    return run
