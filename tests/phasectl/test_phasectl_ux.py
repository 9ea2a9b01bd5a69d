"""The operator's first hour: ``phasectl`` fails fast on a backend it cannot use, and teaches.

Driven as the operator runs it, ``python -m phasectl`` in a subprocess, with no emulator:
a stale emulator variable (a port nothing listens on), a server that accepts connections and never
answers, and no backend at all for help, ``--version`` and the commands that need none. The pieces
behind it (``phasectl.connect``, ``shared.deadline``) are checked in-process too.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import phasectl
from phasectl import connect as cli_connect
from phasectl import help_text as cli_help
from phasectl.connect import BIGQUERY, FIRESTORE, PUBSUB, BackendError, Backends

REPO = Path(__file__).resolve().parents[3]
HOSTS = ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST")
Run = Callable[..., tuple[subprocess.CompletedProcess[str], float]]


def _env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in HOSTS and k not in ("PHASECTL_LOG_DIR", "PHASECTL_NOW")}
    return {**base, "GOOGLE_CLOUD_PROJECT": "test", **extra}


def _hosts(port: int) -> dict[str, str]:
    return {
        "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{port}",
        "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{port}",
        "BIGQUERY_EMULATOR_HOST": f"http://127.0.0.1:{port}",
    }


def _runner(env: dict[str, str]) -> Run:
    def run(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "phasectl", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return proc, time.monotonic() - started

    return run


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (the emulators after ``phasectl local down``)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A server that accepts connections (the kernel's backlog) and never reads or answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


# -- 1. fail fast ------------------------------------------------------------------------------------
def test_a_stale_emulator_host_fails_at_once_naming_it(closed_port: int) -> None:
    run = _runner(_env(**_hosts(closed_port)))
    proc, elapsed = run("status")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert elapsed <= 20, f"phasectl status took {elapsed:.1f} s against a stale emulator host"
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith("phasectl: error: cannot reach the Firestore emulator at ")
    assert f"127.0.0.1:{closed_port}" in line and "FIRESTORE_EMULATOR_HOST" in line
    assert "phasectl local up" in line and "unset the variable" in line


@pytest.mark.parametrize(
    ("args", "variable"),
    [
        (("retry", "list"), "BIGQUERY_EMULATOR_HOST"),
        (("reconcile", "--date", "2026-01-24"), "FIRESTORE_EMULATOR_HOST"),  # every backend it needs, first to last
        (("publish", "completion", "--processor", "player_game_summary", "--date", "2026-01-24", "--status", "success"),
         "FIRESTORE_EMULATOR_HOST"),  # Firestore (the audit record) is checked before Pub/Sub
        (("dlq", "list"), "PUBSUB_EMULATOR_HOST"),
        (("trigger", "--transition", "phase2_to_phase3", "--date", "2026-01-24"), "FIRESTORE_EMULATOR_HOST"),
    ],
)  # fmt: skip
def test_every_backend_command_checks_before_touching_one(
    closed_port: int, args: tuple[str, ...], variable: str
) -> None:
    proc, elapsed = _runner(_env(**_hosts(closed_port)))(*args)
    assert proc.returncode == 2 and elapsed <= 20, (proc.stderr, elapsed)
    (line,) = proc.stderr.splitlines()
    assert "cannot reach the" in line and f"({variable}: connection refused)" in line, line


def test_bad_input_is_still_reported_before_the_backend_check(closed_port: int) -> None:
    proc, _ = _runner(_env(**_hosts(closed_port)))("status", "--date", "24/01/2026")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [proc.stderr.strip()] and "invalid game date '24/01/2026'" in proc.stderr


def test_commands_without_a_backend_never_check(closed_port: int, tmp_path: Path) -> None:
    run = _runner(_env(**_hosts(closed_port)))
    down, _ = run("local", "down", "--state-dir", str(tmp_path))
    assert "no local cloud is recorded" in down.stdout, down.stderr
    assert "cannot reach" not in down.stderr
    plan, _ = run("deploy", "plan", "--project", "my-proj", "--function", "phase2_to_phase3")
    assert plan.returncode == 0 and "gcloud" in plan.stdout, plan.stderr


@pytest.mark.parametrize(
    ("args", "backend"),
    [
        (("--timeout", "3", "status"), "Firestore"),  # gRPC: the methods' retries cut to the deadline
        (("retry", "list", "--timeout", "3"), "BigQuery"),  # HTTP: the session's timeouts; after the command too
        (("--timeout", "3", "publish", "completion", "--processor", "player_game_summary", "--date", "2026-01-24",
          "--status", "success"), "Pub/Sub"),  # the publisher's batch thread
        (("--timeout", "3", "dlq", "list"), "Pub/Sub"),  # the subscriber: the Context's, bounded too
    ],
)  # fmt: skip
def test_a_backend_that_accepts_but_never_answers_fails_at_the_deadline(
    silent_port: int, args: tuple[str, ...], backend: str
) -> None:
    proc, elapsed = _runner(_env(**_hosts(silent_port)))(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    # not a speed check: "it ends" (a hang would run to the runner's own limit); the bound leaves room
    # for interpreter start-up on a loaded 2-core CI machine (20 s failed there once)
    assert elapsed <= 60, f"{args} took {elapsed:.1f} s with --timeout 3"
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"phasectl: error: the {backend} emulator at "), line
    assert f"127.0.0.1:{silent_port}" in line and "within the 3 s deadline" in line and "--timeout" in line


def test_an_invalid_timeout_is_bad_input() -> None:
    run = _runner(_env())
    for value in ("0", "-1", "soon", "nan", "1e9"):
        proc, _ = run("--timeout", value, "status")
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--timeout" in proc.stderr, proc.stderr


# -- 2. help that teaches -----------------------------------------------------------------------------
def _paths() -> list[str]:
    return [path for path, _ in cli_help.walk(phasectl.build_parser()) if path]


def test_a_bare_phasectl_prints_the_usage_and_the_commands() -> None:
    proc, _ = _runner(_env())()
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: phasectl ")
    for name in ("status", "reconcile", "retry", "mark-unavailable", "trigger", "publish", "health", "backfill",
                 "dlq", "deploy", "local"):  # fmt: skip
        assert f"\n    {name} " in proc.stderr or f"\n    {name}\n" in proc.stderr, name
    assert "EXAMPLES:" in proc.stderr and "the following arguments are required" not in proc.stderr


def test_a_group_without_its_subcommand_lists_them() -> None:
    proc, _ = _runner(_env())("retry")
    assert proc.returncode == 2 and proc.stderr.startswith("usage: phasectl retry ")
    assert all(f"\n    {name} " in proc.stderr for name in ("list", "requeue", "resolve"))


def test_version() -> None:
    proc, _ = _runner(_env())("--version")
    assert (proc.returncode, proc.stdout) == (0, f"phasectl {importlib.metadata.version('phasechain')}\n")
    assert cli_help.version() == importlib.metadata.version("phasechain")


def test_every_command_has_an_examples_block_in_its_help() -> None:
    run = _runner(_env())
    paths = _paths()
    assert {"status", "retry list", "dlq replay", "publish completion", "deploy", "local"} <= set(paths)
    for path in paths:
        proc, _ = run(*path.split(), "--help")
        assert proc.returncode == 0, (path, proc.stderr)
        assert proc.stdout.startswith(f"usage: phasectl {path} "), path
        examples = proc.stdout.split("\nEXAMPLES:\n", 1)
        assert len(examples) == 2, f"phasectl {path} --help has no EXAMPLES block"
        lines = [line for line in examples[1].splitlines() if line.strip()]
        assert lines and all(line.startswith("    ") for line in lines), (path, lines)
        commands = [line.strip() for line in lines if line.startswith("        $ ")]
        assert commands and all("phasectl " in c for c in commands), (path, lines)


def test_every_option_has_a_help_text_listing_its_choices() -> None:
    parser = phasectl.build_parser()
    for path, each in cli_help.walk(parser):
        text = each.format_help()
        for action in each._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, f"phasectl {path}: {action.option_strings or action.dest} has no help"
            if action.choices:
                listed = "%(choices)s" in action.help or all(str(c) in action.help for c in action.choices)
                assert listed, f"phasectl {path}: the help of {action.option_strings or action.dest} lists no choices"
        transition = next((a for a in each._actions if "--transition" in a.option_strings), None)
        if transition is not None:
            assert all(t in text for t in ("phase2_to_phase3", "phase5_to_phase6")), path


def test_backfill_takes_airflows_reprocess_behavior_for_its_mode() -> None:
    parser = phasectl.build_parser()
    base = ["backfill", "--from", "2026-01-20", "--to", "2026-01-24", "--transition", "phase2_to_phase3"]
    assert parser.parse_args(base).mode == "none"
    for value in ("none", "failed", "completed"):
        assert parser.parse_args([*base, "--reprocess-behavior", value]).mode == value
        assert parser.parse_args([*base, "--mode", value]).mode == value
    with pytest.raises(phasectl.UsageError, match="invalid choice: 'all'"):
        parser.parse_args([*base, "--reprocess-behavior", "all"])
    help_text = dict(cli_help.walk(parser))["backfill"].format_help()
    assert "--reprocess-behavior" in help_text and "Airflow" in help_text


def test_the_global_timeout_and_the_commands_own_agree() -> None:
    parser = phasectl.build_parser()
    assert parser.parse_args(["status"]).timeout == cli_connect.DEFAULT_TIMEOUT
    assert parser.parse_args(["--timeout", "4", "status"]).timeout == 4
    assert parser.parse_args(["status", "--timeout", "5"]).timeout == 5
    assert parser.parse_args(["--timeout", "4", "status", "--timeout", "6"]).timeout == 6


# -- the pieces, in-process ------------------------------------------------------------------------------
def test_emulator_addresses() -> None:
    env = {
        "FIRESTORE_EMULATOR_HOST": "[::1]:8080",
        "PUBSUB_EMULATOR_HOST": "localhost:8085",
        "BIGQUERY_EMULATOR_HOST": "http://127.0.0.1",
    }
    found = {key: cli_connect.emulator(cli_connect.BACKENDS[key], env) for key in (FIRESTORE, PUBSUB, BIGQUERY)}
    assert [(e.host, e.port) for e in found.values() if e] == [("::1", 8080), ("localhost", 8085), ("127.0.0.1", 80)]
    assert cli_connect.emulator(cli_connect.BACKENDS[FIRESTORE], {}) is None
    for bad in ("nohost", "host:port", "host:99999"):
        with pytest.raises(BackendError, match="FIRESTORE_EMULATOR_HOST"):
            cli_connect.emulator(cli_connect.BACKENDS[FIRESTORE], {"FIRESTORE_EMULATOR_HOST": bad})


def test_google_cloud_without_a_login_is_not_logged_in() -> None:
    from google.auth import exceptions as auth_exceptions

    def no_credentials() -> Any:
        raise auth_exceptions.DefaultCredentialsError("Your default credentials were not found.")

    with pytest.raises(BackendError, match=r"not logged in .*`gcloud auth application-default login`"):
        Backends({}, {FIRESTORE}, credentials=no_credentials).ensure()

    class Expired:
        valid = False

    def rejected(credentials: Any, timeout: float) -> None:
        raise auth_exceptions.RefreshError("invalid_grant: Token has been expired or revoked.")

    with pytest.raises(BackendError, match=r"not logged in: .*invalid_grant.*application-default login"):
        Backends({}, {BIGQUERY}, credentials=Expired, refresh=rejected).ensure()
    checked: list[float] = []
    backends = Backends(
        {}, {FIRESTORE, BIGQUERY}, deadline=7, credentials=Expired, refresh=lambda c, t: checked.append(t)
    )
    backends.ensure()
    assert checked == [7]  # once for every Google Cloud backend
    assert backends.reached == ["Firestore (Google Cloud)", "BigQuery (Google Cloud)"]


def test_a_bounded_generated_method_gets_the_deadline_and_names_its_backend() -> None:
    from google.api_core import exceptions as gexc
    from google.api_core import gapic_v1, retry

    from shared.deadline import bind_transport

    seen: list[Any] = []

    def rpc(request: Any, timeout: Any = None, metadata: Any = ()) -> str:
        seen.append(timeout)
        if request == "hang":
            raise gexc.DeadlineExceeded("Deadline Exceeded")
        return "ok"

    slow_retry = retry.Retry(predicate=retry.if_exception_type(gexc.ServiceUnavailable), timeout=300)
    transport = type("Transport", (), {})()
    transport._wrapped_methods = {rpc: gapic_v1.method.wrap_method(rpc, default_retry=slow_retry, default_timeout=300)}
    undo = bind_transport(transport, 3, "the Firestore emulator at 127.0.0.1:1")
    method = transport._wrapped_methods[rpc]
    assert method("x") == "ok" and 0 < seen[-1] <= 3
    assert method("x", timeout=1) == "ok" and seen[-1] <= 1  # a smaller timeout is kept
    with pytest.raises(gexc.DeadlineExceeded) as caught:
        method("hang")
    line = cli_connect.failure_line(caught.value, 3)
    assert line is not None and line.startswith("the Firestore emulator at 127.0.0.1:1 gave no answer within the 3 s")
    undo()
    assert transport._wrapped_methods[rpc] is not method and transport._wrapped_methods[rpc]("x") == "ok"
    assert seen[-1] > 3  # the method's own default again


def test_the_real_clients_can_be_bounded(monkeypatch: pytest.MonkeyPatch, silent_port: int) -> None:
    """The private attributes the bounding relies on exist in the installed client libraries."""
    import google.cloud.pubsub_v1 as pubsub_v1
    from google.cloud import firestore

    from shared.deadline import DeadlineCall, DeadlineRequest, bind_firestore, bind_http, bind_publisher
    from shared.gcp_bigquery import _new_bigquery_client

    for key, value in _hosts(silent_port).items():
        monkeypatch.setenv(key, value)
    fs = firestore.Client(project="test")
    undo_fs = bind_firestore(fs, 2, "fs")
    assert all(isinstance(m, DeadlineCall) for m in fs._firestore_api._transport._wrapped_methods.values())
    publisher = pubsub_v1.PublisherClient()
    undo_pub = bind_publisher(publisher, 2, "pubsub")
    assert isinstance(publisher._transport._wrapped_methods[publisher._transport.publish], DeadlineCall)
    bq = _new_bigquery_client("test", f"http://127.0.0.1:{silent_port}")
    undo_bq = bind_http(bq, 2, "bq", "gone")
    assert isinstance(bq._http.request, DeadlineRequest)
    started = time.monotonic()
    with pytest.raises(Exception) as caught:
        fs.collection("c").document("d").get()
    assert time.monotonic() - started < 10
    assert "fs gave no answer within the 2 s deadline" in (cli_connect.failure_line(caught.value, 2) or "")
    for undo in (undo_fs, undo_pub, undo_bq):
        undo()
    assert not any(isinstance(m, DeadlineCall) for m in fs._firestore_api._transport._wrapped_methods.values())
    assert not isinstance(bq._http.request, DeadlineRequest)
    publisher.stop()


def test_main_in_process_reports_a_stale_host(monkeypatch: pytest.MonkeyPatch, closed_port: int) -> None:
    for key, value in _hosts(closed_port).items():
        monkeypatch.setenv(key, value)
    out, err = io.StringIO(), io.StringIO()
    code = phasectl.main(["status"], environ=_env(**_hosts(closed_port)), out=out, err=err)
    assert code == 2 and out.getvalue() == ""
    assert err.getvalue().count("\n") == 1 and f"127.0.0.1:{closed_port}" in err.getvalue()
