"""Bundle benchmark: installed size and cold start of each function's bundle (``python -m tests.bench.bundles``).

Per function, measured in one run against a real local cloud (Pub/Sub + Firestore emulators):

- installed size of the bundle's requirements (its own venv, built from its
  ``requirements.txt`` only) vs the union of all bundles and vs (c) below;
- cold start = spawn of the ``functions-framework`` CLI until the first sample event
  (a raw Pub/Sub push body with a completion of the function's source phase) is
  answered 2xx; median of ``--runs`` spawns, after one uncounted warm-up per variant.
  Compared in the same run with:
  (a) floor: a hello-world CloudEvent function in the bundle's venv that imports and
      constructs only the clients the event's path uses (Firestore, Pub/Sub publisher)
      and writes the completion to Firestore;
  (b) eager: the same function from the repo source with ``SHARED_EAGER=1`` in a venv
      with the union of every bundle's requirements;
  (c) reference: the dependency set the replaced system's functions shipped, installed
      in its own venv, imported eagerly by a main.py that then does the floor's work.

Results replace the ``## Bundles`` section of docs/benchmarks.md (other sections are
kept). The venv helpers here are also used by tests/deploy/test_bundle_verify.py.
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from deploy.bundle import build_function, functions
from shared.localcloud.emulators import file_lock, free_port
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
    install finished, so an interrupted build is redone. The marker records the interpreter:
    a venv made by another Python is rebuilt.
    """
    digest = requirements_hash(requirements)
    venv = cache / digest
    marker = venv / ".bundle-venv-ready"
    stamp = f"{sys.version}\n{requirements}"
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
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
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


IMPORT_PROBE = "import time; t = time.perf_counter(); import main; print(time.perf_counter() - t)"


def import_time_ms(venv: Path, source_dir: Path, runs: int) -> float:
    """Median wall time of ``import main`` (no server, no event) in a fresh interpreter."""
    env = function_env(  # clients are constructed, never connected: unused loopback emulator addresses
        {
            "GOOGLE_CLOUD_PROJECT": "bench-import",
            "FIRESTORE_EMULATOR_HOST": "127.0.0.1:9",
            "PUBSUB_EMULATOR_HOST": "127.0.0.1:9",
        }
    )
    samples = []
    for _ in range(runs + 1):
        out = subprocess.run(
            [str(venv / "bin" / "python"), "-c", IMPORT_PROBE],
            cwd=source_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]) * 1000)
    return statistics.median(samples[1:])  # the first one compiles bytecode


# --------------------------------------------------------------------------------------
# the comparison functions
# --------------------------------------------------------------------------------------
FLOOR_MAIN = '''"""Floor: a hello-world CloudEvent function with only the clients the event's path uses."""

import base64
import json
import os

import functions_framework
from google.cloud import firestore, pubsub_v1
{eager}
PROJECT = os.environ["GOOGLE_CLOUD_PROJECT"]
_db = firestore.Client(project=PROJECT)
_publisher = pubsub_v1.PublisherClient()


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
@dataclass
class Variant:
    label: str
    cli: Path
    source_dir: Path
    env: dict[str, str]
    transition: str | None  # None: the floor/reference handler (any completion will do)
    samples: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples) * 1000


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


def main(argv: list[str] | None = None) -> int:
    from shared.localcloud.emulators import LocalCloud

    parser = argparse.ArgumentParser(prog="python -m tests.bench.bundles")
    parser.add_argument("--runs", type=int, default=5, help="cold starts per variant (median)")
    parser.add_argument("--write", type=Path, default=DOC)
    parser.add_argument("functions", nargs="*", help="default: every function")
    args = parser.parse_args(argv)
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

        say("import times ...\n")
        import_ms = {name: import_time_ms(venvs[name], bundles[name], args.runs) for name in timed}
        floor_import_ms = {
            venvs[name].name: import_time_ms(venvs[name], write_floor(work / f"floor-{venvs[name].name}"), args.runs)
            for name in timed
        }
        sizes = {name: installed_size(venvs[name]) for name in names}
        union_size = installed_size(union_venv)
        ref_size = installed_size(reference.venv) if reference.venv else None

        with LocalCloud(project="bench-project") as cloud:
            cloud_env = cloud.env()
            variants: list[Variant] = []
            floors: dict[Path, Variant] = {}
            for name in timed:
                venv = venvs[name]
                env = function_env(cloud_env)
                variants.append(
                    Variant(f"bundle:{name}", venv / "bin" / "functions-framework", bundles[name], env, name)
                )
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

            def event(variant: Variant) -> dict[str, Any]:
                nonlocal day
                day += 1
                transition = variant.transition or timed[0]
                game_date = past_game_date(definition, 2 + day)  # a fresh date per spawn: same work each time
                return push_body(sample_completion(definition, transition, game_date), cloud.project)

            logs = work / "logs"
            load = [os.getloadavg()[0]]
            say(f"cold starts: {len(variants)} variants x ({args.runs} runs + 1 warm-up)\n")
            for variant in variants:  # warm-up: page cache, bytecode, emulator channels
                cold_start(variant.cli, variant.source_dir, variant.env, event(variant), logs / "warmup.log")
            for run in range(args.runs):
                for variant in variants:  # interleaved, so machine noise hits every variant alike
                    log = logs / f"{variant.label.replace(':', '-')}-{run}.log"
                    variant.samples.append(
                        cold_start(variant.cli, variant.source_dir, variant.env, event(variant), log)
                    )
            load.append(os.getloadavg()[0])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    by_label = {v.label: v for v in variants}
    size_rows, time_rows = [], []
    met = {"floor": True, "reference": True, "size": True, "unused": True}
    for name in names:
        dists = [line.split("==")[0] for line in reqs[name].splitlines() if line]
        size_ratio = sizes[name] / ref_size if ref_size else None
        size_rows.append(
            f"| {name} | {len(dists)} | {_mb(sizes[name])} | {_mb(union_size)} | "
            f"{_mb(ref_size) if ref_size else 'n/a'} | {f'{size_ratio:.2f}' if size_ratio else 'n/a'} |"
        )
        met["size"] &= bool(size_ratio and size_ratio <= 0.5)
    for name in timed:
        bundle_v, eager_v = by_label[f"bundle:{name}"], by_label[f"eager:{name}"]
        floor_v = floors[venvs[name]]
        b, f_, e = bundle_v.median_ms, floor_v.median_ms, eager_v.median_ms
        r = ref_variant.median_ms if ref_variant else None
        time_rows.append(
            f"| {name} | {b:.0f} | {f_:.0f} | {e:.0f} | {f'{r:.0f}' if r else 'n/a'} | "
            f"{b / f_:.2f} | {e / b:.2f} | {f'{r / b:.2f}' if r else 'n/a'} | "
            f"{import_ms[name]:.0f} / {floor_import_ms[venvs[name].name]:.0f} |"
        )
        met["floor"] &= b / f_ <= 1.2
        met["reference"] &= bool(r and r / b >= 1.7)
    unused = _unused_distributions(names, reqs)
    met["unused"] = not unused
    untimed = [n for n in names if n not in timed]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**NOT met**"

    lines = [
        SECTION,
        "",
        f"Command: `python -m tests.bench.bundles` (runs={args.runs}, median; one uncounted warm-up spawn per "
        "variant; variants interleaved). Measured "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {sys.platform}, {os.cpu_count()} cores, Python "
        f"{sys.version_info.major}.{sys.version_info.minor}, real Pub/Sub + Firestore emulators.",
        "Cold start = spawn of the `functions-framework` CLI → first event answered 2xx (a raw Pub/Sub push body: a",
        "completion of the function's source phase that records and waits). Installed size = site-packages without",
        "pip/setuptools. Ratios compare numbers of this one run. 1-min load average before / after the cold starts: "
        f"{load[0]:.1f} / {load[-1]:.1f} (other work on the machine shows up here).",
        "",
        "- bundle: `build/<function>/` in a venv from its own `requirements.txt` only.",
        "- floor (a): hello-world CloudEvent function in the bundle's venv; constructs a Firestore client and a",
        "  Pub/Sub publisher at import, writes the completion to Firestore.",
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
        "| function | requirements | bundle MB | union MB | (c) MB | bundle / (c) |",
        "|---|---|---|---|---|---|",
        *size_rows,
        "",
        "| function | bundle ms | floor ms | eager ms | (c) ms | bundle / floor | eager / bundle | (c) / bundle "
        "| `import main` ms bundle / floor |",
        "|---|---|---|---|---|---|---|---|---|",
        *time_rows,
        "",
    ]
    if untimed:
        lines += [
            f"Not timed (not transitions; the sample completion is not their event): {', '.join(untimed)}.",
            "",
        ]
    lines += [
        f"Targets: bundle ≤ 1.2 x floor: {verdict(met['floor'])}; ≥ 1.7 x faster than (c): "
        f"{verdict(met['reference'])}; installed ≤ 50 % of (c): {verdict(met['size'])}; no bundle lists a "
        f"distribution its closure never imports: {verdict(met['unused'])}"
        + (f" ({', '.join(unused)})" if unused else "")
        + ".",
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
