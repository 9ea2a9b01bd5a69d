"""Bundle benchmark: installed size and cold start of each function's bundle (``python -m tests.bench.bundles``).

Per function, measured in one run against a real local cloud (Pub/Sub + Firestore emulators):

- installed size of the bundle's requirements (its own venv, built from its
  ``requirements.txt`` only) vs the union of all bundles and vs (c) below;
- cold start = spawn of the ``functions-framework`` CLI until the first sample event
  (a raw Pub/Sub push body with a completion of the function's source phase, which
  records and waits) is answered 2xx. ``--runs`` (default 9) counted spawns per variant,
  in rounds: every round spawns every variant once, in the same order, so machine noise
  hits all variants alike; one uncounted warm-up round first (page cache, bytecode,
  emulator channels). Reported per variant: median, p25-p75 and min-max; the 1-min load
  average is read at the start of every round and listed. Variants, in the same run:
  bundle: ``build/<function>/`` in a venv from its own ``requirements.txt``;
  (a) floor: a hello-world CloudEvent function in the bundle's venv that imports and
      constructs a Firestore client (the only client a wait event uses) and writes the
      completion to Firestore;
  (b) eager: the same function from the repo source with ``SHARED_EAGER=1`` in a venv
      with the union of every bundle's requirements;
  (c) reference: the dependency set the replaced system's functions shipped, installed
      in its own venv, imported eagerly by a main.py that then does the floor's work.
- breakdown of one cold start, for every transition bundle and its floor, from a probe
  (``BREAKDOWN_PROBE``) run as ``python -X importtime -c`` of the variant's venv with
  cwd = the source dir, in rounds like the cold starts (warm-up + ``--runs``, medians):
  (i) interpreter + framework = [parent's spawn → the probe's first line] (both read
      ``time.monotonic()``, CLOCK_MONOTONIC, one clock for all processes) + ``import
      functions_framework`` + ``functions_framework.create_app(target="handle",
      source="main.py", signature_type="cloudevent")`` minus the execution of main.py;
  (ii) shared closure = execution of main.py inside create_app (timed by wrapping the
      loader's ``exec_module``) minus (iii);
  (iii) client imports = sum of the cumulative ``-X importtime`` times of the outermost
      imports of the client stack (google.cloud.firestore / pubsub / bigquery,
      google.api_core, google.auth, google.protobuf, grpc, proto, ...) while main.py
      executes; markers written to stderr between the steps tell which step an import
      belongs to;
  (iv) first event = ``app.test_client().post("/", json=push_body)`` → 2xx; its own
      client imports are shown apart. The probe also reports which of
      google.cloud.firestore / pubsub_v1 / bigquery are in ``sys.modules`` after the event.
  ``-X importtime`` itself costs a little per import, so the parts are not the cold
  start's numbers to the millisecond; medians of the parts need not add up to the median
  total.

Targets (ratios of medians of this one run): every transition bundle ≤ 1.2 x its floor;
(c) ≥ 1.7 x the bundle; eager ≥ 1.2 x the bundle; no transition loads
google.cloud.bigquery on a wait event; a transition without gates has no
google-cloud-bigquery in its requirements.txt; installed ≤ 50 % of (c); no bundle lists
a distribution its closure never imports.

Results replace the ``## Bundles`` section of docs/benchmarks.md (other sections are
kept; ``--write`` another file for a trial). The venv, event and probe helpers here are
also used by tests/deploy/test_bundle_verify.py and test_bundle_wait_path.py.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from deploy.bundle import build_function, functions
from deploy.local.emulators import file_lock, free_port
from shared.pipeline.definition import ModeWhen, PipelineDefinition, Rule, load_definition

REPO = Path(__file__).resolve().parents[2]
VENV_CACHE = REPO / ".cache" / "bundle-venvs"
DOC = REPO / "docs" / "benchmarks.md"
SECTION = "## Bundles"
# What the functions of the replaced system shipped, and the modules they imported eagerly.
REPLACED_SYSTEM = (
    "functions-framework",
    "google-cloud-firestore",
    "google-cloud-bigquery",
    "google-cloud-logging",
    "google-cloud-storage",
    "google-cloud-pubsub",
    "google-cloud-secret-manager",
    "requests",
    "pandas",
    "pyarrow",
    "psutil",
    "PyYAML",
)
REPLACED_IMPORTS = {
    "functions-framework": "functions_framework",
    "google-cloud-firestore": "google.cloud.firestore",
    "google-cloud-bigquery": "google.cloud.bigquery",
    "google-cloud-logging": "google.cloud.logging",
    "google-cloud-storage": "google.cloud.storage",
    "google-cloud-pubsub": "google.cloud.pubsub_v1",
    "google-cloud-secret-manager": "google.cloud.secretmanager",
    "requests": "requests",
    "pandas": "pandas",
    "pyarrow": "pyarrow",
    "psutil": "psutil",
    "PyYAML": "yaml",
}
VENV_TOOLING = ("pip", "setuptools", "wheel", "_distutils_hack", "pkg_resources", "distutils-precedence.pth")
# Environment that must not leak into a spawned function (it would make the repo importable
# or change what loads).
SCRUBBED_ENV = ("PYTHONPATH", "PYTHONSAFEPATH", "PYTHONHOME", "SHARED_EAGER", "PIPELINE_DEFINITION", "VIRTUAL_ENV")


# --------------------------------------------------------------------------------------
# venvs cached by requirements hash
# --------------------------------------------------------------------------------------
class VenvError(RuntimeError):
    """A venv could not be created or its requirements could not be installed."""


def requirements_hash(requirements: str) -> str:
    return hashlib.sha256(requirements.encode()).hexdigest()[:16]


def cached_venv(requirements: str, cache: Path = VENV_CACHE, timeout: float = 900.0) -> Path:
    """A venv with exactly ``pip install -r requirements`` (nothing of the project), cached by its hash.

    Safe for parallel runs (a file lock per hash); a marker file is written only when the
    install finished, so an interrupted build is redone. The marker records the interpreter and
    the venv's path: a venv made by another Python, or reached through another path (a symlinked
    cache in another checkout: its scripts' shebangs name the path it was made at), is rebuilt.
    """
    digest = requirements_hash(requirements)
    venv = cache / digest
    marker = venv / ".bundle-venv-ready"
    stamp = f"{sys.version}\n{venv}\n{requirements}"  # a venv is not relocatable: its scripts name its path
    with file_lock(cache / f"{digest}.lock"):
        if marker.is_file() and marker.read_text() == stamp and (venv / "bin" / "python").exists():
            return venv
        if venv.exists():
            shutil.rmtree(venv)
        made = subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=300, check=False
        )
        if made.returncode != 0:
            raise VenvError(f"python -m venv {venv} failed:\n{made.stderr[-3000:]}")
        (venv / "requirements.txt").write_text(requirements)
        installed = subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(venv / "requirements.txt"),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if installed.returncode != 0:
            raise VenvError(f"pip install -r requirements.txt failed in {venv}:\n{installed.stderr[-3000:]}")
        marker.write_text(stamp)
    return venv


def site_packages(venv: Path) -> Path:
    found = sorted((venv / "lib").glob("python3*/site-packages"))
    if not found:
        raise VenvError(f"no site-packages under {venv}")
    return found[0]


def installed_size(venv: Path) -> int:
    """Bytes of every file in site-packages except the venv's own tooling (pip, setuptools)."""
    total = 0
    for entry in site_packages(venv).iterdir():
        name = entry.name.split("-")[0] if entry.name.endswith((".dist-info", ".egg-info")) else entry.name
        if name in VENV_TOOLING or name.lower() in VENV_TOOLING:
            continue
        paths = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file() and not p.is_symlink()]
        total += sum(p.stat().st_size for p in paths)
    return total


def distributions_in(venv: Path) -> list[str]:
    site = site_packages(venv)
    names = []
    for info in site.glob("*.dist-info"):
        name = info.name.removesuffix(".dist-info").rsplit("-", 1)[0]
        if name.lower() not in VENV_TOOLING:
            names.append(name)
    return sorted(names, key=str.lower)


# --------------------------------------------------------------------------------------
# the sample event
# --------------------------------------------------------------------------------------
def sample_completion(definition: PipelineDefinition, transition: str, game_date: date) -> dict[str, Any]:
    """A valid completion of ``transition``'s source phase that records and waits (no trigger).

    A non-critical expected processor of the "before today" mode is never enough alone; a
    threshold rule gets a completion below its threshold.
    """
    t = definition.transition(transition)
    mode = t.mode_for(ModeWhen.BEFORE_TODAY) if t.modes else None
    expected = mode.expected if mode else t.expected
    critical = mode.critical if mode else t.critical
    candidates = [p for p in expected if p not in critical] or list(expected)
    processor = candidates[0]
    payload: dict[str, Any] = {
        "processor_name": processor,
        "phase": t.source_phase,
        "execution_id": uuid.uuid4().hex,
        "correlation_id": f"bundle-verify-{game_date}",
        "game_date": game_date.isoformat(),
        "status": "success",
        "record_count": 1,
        "timestamp": datetime.now(UTC).isoformat(),
    }
    if t.rule is Rule.COMPLETION_THRESHOLD:
        payload["completion_pct"] = 10.0
    return payload


def push_body(payload: Mapping[str, Any], project: str) -> dict[str, Any]:
    """A raw Pub/Sub push body, as a push subscription POSTs it."""
    return {
        "message": {
            "data": base64.b64encode(json.dumps(payload).encode()).decode(),
            "attributes": {"processor_name": str(payload["processor_name"]), "game_date": str(payload["game_date"])},
            "messageId": uuid.uuid4().hex,
            "publishTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        },
        "subscription": f"projects/{project}/subscriptions/bundle-bench",
    }


def past_game_date(definition: PipelineDefinition, days_ago: int = 2) -> date:
    """A game date before "today" in the pipeline timezone (overnight mode)."""
    return datetime.now(ZoneInfo(definition.pipeline.timezone)).date() - timedelta(days=days_ago)


# --------------------------------------------------------------------------------------
# functions-framework servers
# --------------------------------------------------------------------------------------
def function_env(cloud_env: Mapping[str, str], **extra: str) -> dict[str, str]:
    from deploy.spec import RUNTIME_ENV

    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.update(RUNTIME_ENV)  # as deployed: every variant runs with the functions' runtime env
    env.update(cloud_env)
    env.update(extra)
    return env


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    started: float = field(default_factory=time.perf_counter)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "<no log>"

    def wait_listening(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"functions-framework exited with {self.process.returncode}:\n{self.log_tail()}")
            with socket.socket() as sock:
                sock.settimeout(0.2)
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.005)
        raise RuntimeError(f"functions-framework not listening on {self.port} after {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)  # gunicorn's arbiter stops its worker
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def start_server(cli: Path, source_dir: Path, env: Mapping[str, str], log: Path, target: str = "handle") -> Server:
    """``functions-framework --source main.py`` from ``source_dir`` (its cwd), on a free loopback port."""
    port = free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        str(cli),
        "--target",
        target,
        "--source",
        "main.py",
        "--signature-type",
        "cloudevent",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    started = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, cwd=source_dir, env=dict(env), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    return Server(proc, port, log, started)


def post_json(url: str, body: Mapping[str, Any], timeout: float = 60.0) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # loopback only
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def cold_start(cli: Path, source_dir: Path, env: Mapping[str, str], body: Mapping[str, Any], log: Path) -> float:
    """Seconds from spawning the server to the first event answered 2xx."""
    server = start_server(cli, source_dir, env, log)
    try:
        server.wait_listening()
        status = post_json(server.url, body)
        elapsed = time.perf_counter() - server.started
        if not 200 <= status < 300:
            raise RuntimeError(f"{source_dir}: event answered {status}:\n{server.log_tail()}")
        return elapsed
    finally:
        server.stop()


# --------------------------------------------------------------------------------------
# one cold start, in parts (no server: functions_framework.create_app + the Flask test client)
# --------------------------------------------------------------------------------------
PROBE_MARK = "@@bench-step "
PROBE_RESULT = "@@bench-result "
# The client stack: an import whose name is one of these or below it (``x.y``, ``x_v1``).
CLIENT_STACK = (
    "google.cloud.firestore",
    "google.cloud.pubsub",
    "google.cloud.bigquery",
    "google.api_core",
    "google.auth",
    "google.oauth2",
    "google.protobuf",
    "google.rpc",
    "google.type",
    "google.longrunning",
    "google.iam",
    "google.logging",
    "grpc",
    "proto",
)
CLIENTS = ("google.cloud.firestore", "google.cloud.pubsub_v1", "google.cloud.bigquery")
# argv: the parent's time.monotonic() at spawn; stdin: the push body (JSON).
# Steps are marked on stderr, where ``-X importtime`` writes, so each import can be
# attributed to the step it happened in; the result is one prefixed JSON line on stdout.
BREAKDOWN_PROBE = r"""
import time
T0 = time.monotonic()
import json, sys

SPAWNED = float(sys.argv[1])
BODY = json.load(sys.stdin)


def step(name):
    sys.stderr.write("\n@@bench-step " + name + "\n")
    sys.stderr.flush()


step("framework")
import functions_framework
from functions_framework import _function_registry as registry

main_s = []
_load = registry.load_function_module


def load_function_module(source):
    module, spec = _load(source)
    run = spec.loader.exec_module

    def exec_module(mod):
        step("main")
        started = time.monotonic()
        try:
            run(mod)
        finally:
            main_s.append(time.monotonic() - started)
            step("framework")

    spec.loader.exec_module = exec_module
    return module, spec


registry.load_function_module = load_function_module
app = functions_framework.create_app(target="handle", source="main.py", signature_type="cloudevent")
T1 = time.monotonic()
step("event")
response = app.test_client().post("/", json=BODY)
T2 = time.monotonic()
step("end")
if not 200 <= response.status_code < 300:
    sys.stderr.write(response.get_data(as_text=True)[-3000:] + "\n")
    raise SystemExit("event answered %d" % response.status_code)
sys.stdout.write("\n@@bench-result " + json.dumps({
    "start_s": T0 - SPAWNED,
    "app_s": T1 - T0,
    "main_s": sum(main_s),
    "event_s": T2 - T1,
    "total_s": T2 - SPAWNED,
    "status": response.status_code,
    "modules": sorted(sys.modules),
}) + "\n")
"""


class ProbeError(RuntimeError):
    """The probe failed (non-2xx event, crash or timeout); the message carries its output."""


@dataclass
class Breakdown:
    """One cold start of a function, in parts (milliseconds)."""

    interpreter_ms: float  # parent's spawn → the probe's first line
    framework_ms: float  # import functions_framework + create_app, without main.py's execution
    closure_ms: float  # main.py's execution minus its client imports
    client_import_ms: float  # client-stack imports while main.py executes
    event_ms: float  # the first event through the test client
    event_client_import_ms: float  # client-stack imports during the first event
    total_ms: float  # spawn → event answered
    status: int
    modules: list[str]
    output: str  # the probe's stdout and stderr (logs), for diagnostics

    @property
    def start_ms(self) -> float:
        """(i) interpreter + framework."""
        return self.interpreter_ms + self.framework_ms

    def clients(self) -> list[str]:
        return [c for c in CLIENTS if c in self.modules]


def _is_client(module: str) -> bool:
    return any(module == p or module.startswith((p + ".", p + "_")) for p in CLIENT_STACK)


def client_import_ms(stderr: str) -> dict[str, float]:
    """Per probe step: milliseconds of client-stack imports, from ``-X importtime`` lines.

    importtime writes each import when it finishes (children before their parent, a child
    indented 2 more); read backwards, a parent comes before its children, so the outermost
    client-stack imports are summed and whatever they imported is not counted twice.
    """
    entries: dict[str, list[tuple[int, str, int]]] = {}
    current = "startup"
    for line in stderr.splitlines():
        if PROBE_MARK in line:
            current = line.split(PROBE_MARK, 1)[1].strip()
            continue
        if not line.startswith("import time:"):
            continue
        parts = line.split("|")
        if len(parts) < 3 or not parts[1].strip().isdigit():
            continue  # the header
        name_field = parts[2].rstrip()
        level = (len(name_field) - len(name_field.lstrip(" ")) - 1) // 2
        entries.setdefault(current, []).append((level, name_field.strip(), int(parts[1])))
    totals: dict[str, float] = {}
    for step_name, items in entries.items():
        total_us, inside = 0, None
        for level, name, cumulative_us in reversed(items):
            if inside is not None and level > inside:
                continue  # below a client import already counted
            inside = None
            if _is_client(name):
                total_us += cumulative_us
                inside = level
        totals[step_name] = total_us / 1000
    return totals


def run_probe(
    venv: Path,
    source_dir: Path,
    env: Mapping[str, str],
    body: Mapping[str, Any],
    *,
    importtime: bool = True,
    timeout: float = 180.0,
) -> Breakdown:
    """One fresh interpreter of ``venv`` in ``source_dir``: create the app, serve ``body`` once.

    Raises ``ProbeError`` unless the event is answered 2xx.
    """
    argv = [str(venv / "bin" / "python"), *(["-X", "importtime"] if importtime else []), "-c", BREAKDOWN_PROBE]
    spawned = time.monotonic()
    try:
        done = subprocess.run(
            [*argv, repr(spawned)],
            cwd=source_dir,
            env=dict(env),
            input=json.dumps(body),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ProbeError(f"{source_dir}: probe timed out after {timeout:.0f}s") from exc
    logs = "\n".join(
        line
        for line in (done.stdout + "\n" + done.stderr).splitlines()
        if line.strip() and not line.startswith("import time:") and PROBE_MARK not in line and PROBE_RESULT not in line
    )
    results = [line.split(PROBE_RESULT, 1)[1] for line in done.stdout.splitlines() if PROBE_RESULT in line]
    if done.returncode != 0 or not results:
        raise ProbeError(f"{source_dir}: probe exited {done.returncode}:\n{logs[-4000:]}")
    data = json.loads(results[-1])
    clients = client_import_ms(done.stderr)
    main_ms, client_ms = data["main_s"] * 1000, clients.get("main", 0.0)
    return Breakdown(
        interpreter_ms=data["start_s"] * 1000,
        framework_ms=(data["app_s"] - data["main_s"]) * 1000,
        closure_ms=main_ms - client_ms,
        client_import_ms=client_ms,
        event_ms=data["event_s"] * 1000,
        event_client_import_ms=clients.get("event", 0.0),
        total_ms=data["total_s"] * 1000,
        status=int(data["status"]),
        modules=list(data["modules"]),
        output=logs,
    )


# --------------------------------------------------------------------------------------
# the comparison functions
# --------------------------------------------------------------------------------------
FLOOR_MAIN = '''"""Floor: a hello-world CloudEvent function with only the client the event's path uses (Firestore:
a completion that records and waits publishes nothing)."""

import base64
import json
import os

import functions_framework
from google.cloud import firestore
{eager}
PROJECT = os.environ["GOOGLE_CLOUD_PROJECT"]
_db = firestore.Client(project=PROJECT)


@functions_framework.cloud_event
def handle(cloud_event):
    message = cloud_event.data["message"]
    payload = json.loads(base64.b64decode(message["data"]))
    _db.collection("bench_floor").document(payload["execution_id"]).set(payload)
'''


def write_floor(directory: Path, eager_imports: tuple[str, ...] = ()) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    eager = "".join(f"import {module}  # eager, as the replaced system did\n" for module in eager_imports)
    (directory / "main.py").write_text(FLOOR_MAIN.format(eager=("\n" + eager) if eager else ""))
    return directory


@dataclass
class Reference:
    """(c): the replaced system's dependency set, or what of it could be installed here."""

    venv: Path | None
    installed: list[str]
    missing: dict[str, str]


def reference_venv() -> Reference:
    wanted = "\n".join(REPLACED_SYSTEM) + "\n"
    try:
        return Reference(cached_venv(wanted), list(REPLACED_SYSTEM), {})
    except VenvError as exc:
        whole_error = str(exc)
    missing: dict[str, str] = {}
    for name in REPLACED_SYSTEM:  # find which ones this machine's index cannot provide
        try:
            cached_venv(f"{name}\n")
        except VenvError as exc:
            missing[name] = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else whole_error[-200:]
    installable = [n for n in REPLACED_SYSTEM if n not in missing]
    needed = {"functions-framework", "google-cloud-firestore", "google-cloud-pubsub"}
    if not needed <= set(installable):
        return Reference(None, installable, missing)
    return Reference(cached_venv("\n".join(installable) + "\n"), installable, missing)


# --------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spread:
    """Median, quartiles (p25-p75, inclusive method) and range of some samples."""

    median: float
    p25: float
    p75: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        ordered = sorted(values)
        if not ordered:
            raise ValueError("no samples")
        if len(ordered) >= 2:
            p25, _, p75 = statistics.quantiles(ordered, n=4, method="inclusive")
        else:
            p25 = p75 = ordered[0]
        return cls(statistics.median(ordered), p25, p75, ordered[0], ordered[-1], len(ordered))

    def iqr(self) -> str:
        return f"{self.p25:.0f}-{self.p75:.0f}"

    def range(self) -> str:
        return f"{self.low:.0f}-{self.high:.0f}"


@dataclass
class Variant:
    """One thing whose cold start is timed: a CLI, a source dir, an environment."""

    label: str
    cli: Path
    source_dir: Path
    env: dict[str, str]
    transition: str | None  # None: the floor/reference handler (any completion will do)
    samples: list[float] = field(default_factory=list)  # seconds

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples) * 1000

    def spread(self) -> Spread:
        return Spread.of([s * 1000 for s in self.samples])


@dataclass
class Probed:
    """One thing whose cold start is broken down (``run_probe``): a bundle or a floor."""

    label: str
    venv: Path
    source_dir: Path
    env: dict[str, str]
    transition: str | None
    runs: list[Breakdown] = field(default_factory=list)

    def median(self, part: str) -> float:
        return statistics.median(float(getattr(run, part)) for run in self.runs)

    def clients(self) -> list[str]:
        """Clients in ``sys.modules`` after the first event, in any run."""
        seen = {c for run in self.runs for c in run.clients()}
        return [c for c in CLIENTS if c in seen]


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f}"


def replace_section(document: str, section: str, heading: str = SECTION) -> str:
    """``document`` with the text from ``heading`` to the next ``## `` heading (or EOF) replaced."""
    found = re.search(rf"^{re.escape(heading)}[ \t]*$", document, flags=re.MULTILINE)
    if found is None:
        return document.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    start = found.start()
    end = document.find("\n## ", found.end())
    tail = document[end + 1 :] if end >= 0 else ""
    return document[:start] + section.rstrip("\n") + "\n" + ("\n" + tail if tail else "")


def lists_bigquery(requirements: str) -> bool:
    return any(
        re.split(r"[=<>!~\[; ]", line.strip(), maxsplit=1)[0].lower().replace("_", "-") == "google-cloud-bigquery"
        for line in requirements.splitlines()
    )


def _loads(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


@dataclass
class Target:
    text: str
    met: bool
    measured: str

    def render(self) -> str:
        return f"- {self.text}: {'met' if self.met else '**NOT met**'} ({self.measured})"


def main(argv: list[str] | None = None) -> int:
    from deploy.local.emulators import LocalCloud

    parser = argparse.ArgumentParser(prog="python -m tests.bench.bundles")
    parser.add_argument("--runs", type=int, default=9, help="counted spawns per variant (median and spread)")
    parser.add_argument("--write", type=Path, default=DOC)
    parser.add_argument("functions", nargs="*", help="default: every function")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    say = sys.stdout.write
    definition = load_definition()
    transitions = {t.name for t in definition.transitions}
    names = args.functions or functions()
    timed = [n for n in names if n in transitions]  # the sample event is a completion: transitions only
    work = Path(tempfile.mkdtemp(prefix="bundle-bench-"))
    try:
        say(f"building bundles into {work}\n")
        bundles: dict[str, Path] = {}
        reqs: dict[str, str] = {}
        for name in functions():
            build_function(name, work / "build")
            bundles[name] = work / "build" / name
            reqs[name] = (bundles[name] / "requirements.txt").read_text()
        union = "".join(sorted({line + "\n" for text in reqs.values() for line in text.splitlines() if line}))
        say("venvs (cached under .cache/bundle-venvs) ...\n")
        venvs = {name: cached_venv(reqs[name]) for name in names}
        union_venv = cached_venv(union)
        reference = reference_venv()
        sizes = {name: installed_size(venvs[name]) for name in names}
        union_size = installed_size(union_venv)
        ref_size = installed_size(reference.venv) if reference.venv else None

        with LocalCloud(project="bench-project") as cloud:
            cloud_env = cloud.env()
            variants: list[Variant] = []
            floors: dict[Path, Variant] = {}
            probed: list[Probed] = []
            floor_probes: dict[Path, Probed] = {}
            for name in timed:
                venv = venvs[name]
                env = function_env(cloud_env)
                variants.append(
                    Variant(f"bundle:{name}", venv / "bin" / "functions-framework", bundles[name], env, name)
                )
                probed.append(Probed(f"bundle:{name}", venv, bundles[name], env, name))
                if venv not in floors:
                    floor_dir = write_floor(work / f"floor-{venv.name}")
                    floors[venv] = Variant(
                        f"floor:{venv.name}",
                        venv / "bin" / "functions-framework",
                        floor_dir,
                        function_env(cloud_env),
                        None,
                    )
                    variants.append(floors[venv])
                    floor_probes[venv] = Probed(f"floor:{venv.name}", venv, floor_dir, function_env(cloud_env), None)
                    probed.append(floor_probes[venv])
                variants.append(
                    Variant(
                        f"eager:{name}",
                        union_venv / "bin" / "functions-framework",
                        REPO / "functions" / name,
                        function_env(cloud_env, PYTHONPATH=str(REPO), SHARED_EAGER="1"),
                        name,
                    )
                )
            ref_variant = None
            if reference.venv is not None:
                imports = tuple(REPLACED_IMPORTS[n] for n in reference.installed)
                ref_variant = Variant(
                    "reference",
                    reference.venv / "bin" / "functions-framework",
                    write_floor(work / "reference", imports),
                    function_env(cloud_env),
                    None,
                )
                variants.append(ref_variant)

            day = 0

            def event(transition: str | None) -> dict[str, Any]:
                nonlocal day
                day += 1
                game_date = past_game_date(definition, 2 + day)  # a fresh date per spawn: same work each time
                return push_body(sample_completion(definition, transition or timed[0], game_date), cloud.project)

            logs = work / "logs"
            cold_loads: list[float] = []
            say(f"cold starts: {len(variants)} variants x (1 warm-up + {args.runs}) rounds\n")
            for run in range(-1, args.runs):  # round -1: the uncounted warm-up
                cold_loads.append(os.getloadavg()[0])
                for variant in variants:  # interleaved, so machine noise hits every variant alike
                    log = logs / f"{variant.label.replace(':', '-')}-{run}.log"
                    seconds = cold_start(variant.cli, variant.source_dir, variant.env, event(variant.transition), log)
                    if run >= 0:
                        variant.samples.append(seconds)
            probe_loads: list[float] = []
            say(f"breakdown: {len(probed)} variants x (1 warm-up + {args.runs}) rounds\n")
            for run in range(-1, args.runs):
                probe_loads.append(os.getloadavg()[0])
                for target in probed:
                    result = run_probe(target.venv, target.source_dir, target.env, event(target.transition))
                    if run >= 0:
                        target.runs.append(result)
            load_after = os.getloadavg()[0]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    by_label = {v.label: v for v in variants}
    probe_by_label = {p.label: p for p in probed}
    size_rows, cold_rows, ratio_rows, breakdown_rows = [], [], [], []
    for name in names:
        dists = [line.split("==")[0] for line in reqs[name].splitlines() if line]
        size_ratio = sizes[name] / ref_size if ref_size else None
        size_rows.append(
            f"| {name} | {len(dists)} | {_mb(sizes[name])} | {_mb(union_size)} | "
            f"{_mb(ref_size) if ref_size else 'n/a'} | {f'{size_ratio:.2f}' if size_ratio else 'n/a'} |"
        )
    for variant in variants:
        s = variant.spread()
        cold_rows.append(f"| {variant.label} | {s.median:.0f} | {s.iqr()} | {s.range()} |")
    floor_ratios: dict[str, float] = {}
    ref_ratios: dict[str, float] = {}
    eager_ratios: dict[str, float] = {}
    bigquery_on_wait: list[str] = []
    for name in timed:
        bundle_v, eager_v, floor_v = by_label[f"bundle:{name}"], by_label[f"eager:{name}"], floors[venvs[name]]
        b = bundle_v.median_ms
        floor_ratios[name] = b / floor_v.median_ms
        eager_ratios[name] = eager_v.median_ms / b
        if ref_variant is not None:
            ref_ratios[name] = ref_variant.median_ms / b
        loaded = "google.cloud.bigquery" in probe_by_label[f"bundle:{name}"].clients()
        if loaded:
            bigquery_on_wait.append(name)
        gates = definition.transition(name).gates
        ratio_rows.append(
            f"| {name} | {len(gates)} | {floor_ratios[name]:.2f} | "
            f"{f'{ref_ratios[name]:.2f}' if name in ref_ratios else 'n/a'} | {eager_ratios[name]:.2f} | "
            f"{'yes' if loaded else 'no'} | {'yes' if lists_bigquery(reqs[name]) else 'no'} |"
        )
    for target in probed:
        total = Spread.of([run.total_ms for run in target.runs])
        breakdown_rows.append(
            f"| {target.label} | {target.median('start_ms'):.0f} | {target.median('closure_ms'):.0f} | "
            f"{target.median('client_import_ms'):.0f} | {target.median('event_ms'):.0f} "
            f"({target.median('event_client_import_ms'):.0f}) | {total.median:.0f} ({total.iqr()}) | "
            f"{', '.join(c.removeprefix('google.cloud.') for c in target.clients()) or '-'} |"
        )

    gateless = [n for n in names if n in transitions and not definition.transition(n).gates]
    gateless_with_bq = [n for n in gateless if lists_bigquery(reqs[n])]
    unused = _unused_distributions(names, reqs)
    size_ok = bool(ref_size) and all(ref_size and sizes[n] / ref_size <= 0.5 for n in names)

    def worst(ratios: dict[str, float], high: bool) -> str:
        if not ratios:
            return "nothing measured"
        name = (max if high else min)(ratios, key=lambda n: ratios[n])
        return f"{'highest' if high else 'lowest'} {ratios[name]:.2f}, {name}"

    targets = [
        Target(
            "every transition bundle ≤ 1.2 x its floor (cold start medians)",
            bool(floor_ratios) and max(floor_ratios.values()) <= 1.2,
            worst(floor_ratios, high=True),
        ),
        Target(
            "≥ 1.7 x faster than the replaced system's eager set (c): (c) / bundle ≥ 1.7",
            bool(ref_ratios) and len(ref_ratios) == len(timed) and min(ref_ratios.values()) >= 1.7,
            worst(ref_ratios, high=False) if ref_ratios else "(c) not installable here",
        ),
        Target(
            "eager ≥ 1.2 x slower than the bundle: eager / bundle ≥ 1.2",
            bool(eager_ratios) and min(eager_ratios.values()) >= 1.2,
            worst(eager_ratios, high=False),
        ),
        Target(
            "no transition loads google.cloud.bigquery on a wait event",
            bool(timed) and not bigquery_on_wait,
            f"loaded by {', '.join(bigquery_on_wait)}" if bigquery_on_wait else f"none of {len(timed)} loads it",
        ),
        Target(
            "a transition without gates has no google-cloud-bigquery in requirements.txt",
            not gateless_with_bq,
            (f"listed by {', '.join(gateless_with_bq)}" if gateless_with_bq else "none lists it")
            + f"; gateless: {', '.join(gateless) or 'none'}",
        ),
        Target(
            "installed ≤ 50 % of (c)",
            size_ok,
            f"highest {max(sizes[n] / ref_size for n in names):.2f}" if ref_size else "(c) not installable here",
        ),
        Target(
            "no bundle lists a distribution its closure never imports",
            not unused,
            ", ".join(unused) or "none",
        ),
    ]
    untimed = [n for n in names if n not in timed]

    lines = [
        SECTION,
        "",
        f"Command: `python -m tests.bench.bundles` (runs={args.runs} counted per variant + 1 uncounted warm-up; "
        "variants interleaved: every round spawns every variant once, in the same order). Measured "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {sys.platform}, {os.cpu_count()} cores, Python "
        f"{sys.version_info.major}.{sys.version_info.minor}, real Pub/Sub + Firestore emulators. "
        "Ratios compare medians of this one run.",
        "",
        "Cold start = spawn of the `functions-framework` CLI → first event answered 2xx. The event is a raw Pub/Sub "
        "push body: a completion of one processor of the transition's source phase, which records and waits (a "
        "wait event; a fresh game date per spawn). Installed size = site-packages without pip/setuptools.",
        "",
        "- bundle: `build/<function>/` in a venv from its own `requirements.txt` only.",
        "- floor (a): hello-world CloudEvent function in the bundle's venv; constructs a Firestore client at",
        "  import (the only client a wait event uses) and writes the completion to Firestore.",
        "- eager (b): the function from the repo source, `SHARED_EAGER=1`, venv with the union of all bundles' "
        "requirements.",
        "- reference (c): the replaced system's set ("
        + ", ".join(reference.installed)
        + ") imported eagerly, then the floor's work.",
    ]
    if reference.missing:
        lines.append(
            "  Not installable from this machine's package index, so left out of (c): "
            + "; ".join(f"{k} ({v})" for k, v in reference.missing.items())
        )
    lines += [
        "",
        "1-min load average at the start of each round (first: the warm-up); other work on the machine shows up "
        f"here. Cold starts: {_loads(cold_loads)}. Breakdown: {_loads(probe_loads)}. After: {load_after:.1f}.",
        "",
        "### Targets",
        "",
        *(t.render() for t in targets),
        "",
        "### Installed size",
        "",
        "| function | requirements | bundle MB | union MB | (c) MB | bundle / (c) |",
        "|---|---|---|---|---|---|",
        *size_rows,
        "",
        "### Cold start per variant",
        "",
        f"Counted spawns per variant: {args.runs}. "
        + "; ".join(
            f"floor:{venv.name} runs in the venv of {', '.join(n for n in timed if venvs[n] == venv)}"
            for venv in floors
        )
        + ".",
        "",
        "| variant | median ms | p25-p75 ms | min-max ms |",
        "|---|---|---|---|",
        *cold_rows,
        "",
        "| transition | gates | bundle / floor | (c) / bundle | eager / bundle | google.cloud.bigquery loaded on "
        "the wait event | google-cloud-bigquery in requirements.txt |",
        "|---|---|---|---|---|---|---|",
        *ratio_rows,
        "",
    ]
    if untimed:
        lines += [
            f"Not timed (not transitions; the sample completion is not their event): {', '.join(untimed)}.",
            "",
        ]
    lines += [
        "### Breakdown of one cold start",
        "",
        "Medians of the runs, ms. A probe per run: `python -X importtime -c …` of the variant's venv, cwd = the "
        "source dir, no server. How each part is measured:",
        "",
        "- (i) interpreter + framework: the parent's spawn → the probe's first line (both read `time.monotonic()`, "
        "one clock for all processes), plus `import functions_framework` and `functions_framework.create_app("
        'target="handle", source="main.py", signature_type="cloudevent")` without the execution of main.py.',
        "- (ii) shared closure: the execution of main.py inside `create_app` (the loader's `exec_module`, wrapped "
        "with a timer) minus (iii).",
        "- (iii) client imports: while main.py executes, the sum of the `-X importtime` cumulative times of the "
        "outermost imports of the client stack (google.cloud.firestore/pubsub/bigquery, google.api_core, "
        "google.auth, google.protobuf, grpc, proto, …); markers on stderr tell which step an import happened in.",
        '- (iv) first event: `app.test_client().post("/", json=push_body)` → 2xx (Flask test client, no HTTP); '
        "in parentheses the client imports it did (same method as (iii)).",
        "- clients after the event: which of google.cloud.firestore / pubsub_v1 / bigquery are in `sys.modules`.",
        "",
        "`-X importtime` costs a little per import, and the test client skips gunicorn and HTTP, so the total is "
        "close to, not equal to, the cold start above; medians of the parts need not add up to the median total.",
        "",
        "| variant | (i) interpreter + framework | (ii) shared closure | (iii) client imports | (iv) first event "
        "(its client imports) | total (p25-p75) | clients after the event |",
        "|---|---|---|---|---|---|---|",
        *breakdown_rows,
        "",
    ]
    section = "\n".join(lines)
    say(section + "\n")
    existing = args.write.read_text() if args.write.exists() else "# Benchmarks\n"
    args.write.write_text(replace_section(existing, section))
    return 0


def _unused_distributions(names: list[str], reqs: dict[str, str]) -> list[str]:
    """Requirements that no module of the closure imports (from a fresh analysis's manifest)."""
    from deploy.bundle import Analyzer, manifest

    analyzer = Analyzer()
    unused = []
    for name in names:
        data = manifest(analyzer.analyze(name))
        listed = {line.split("==")[0] for line in reqs[name].splitlines() if line}
        entries = data["requirements"]
        assert isinstance(entries, dict)
        unused += [f"{name}:{d}" for d in sorted(listed) if not entries.get(d, {}).get("imports")]
    return unused


if __name__ == "__main__":
    raise SystemExit(main())
