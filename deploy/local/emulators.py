"""Real local backends: Google's Pub/Sub and Firestore emulators and ``local-bigquery``.

Used by the pytest session fixtures, ``make demo`` and (later) ``phasectl local up``.
Every backend starts on a free loopback port; ``LocalCloud.stop`` stops exactly the
processes this object started, by PID, and nothing else.

Provisioning (``provision()``):
- The two Google emulator jars ship with the Google Cloud CLI packages
  ``google-cloud-cli-pubsub-emulator`` and ``google-cloud-cli-firestore-emulator``; no
  registry reachable from here installs them, so their absence is a clear error.
- ``local-bigquery`` 0.3.2 needs Python 3.13 and its DuckDB extensions copied into a
  private ``$HOME/.duckdb`` (no internet to fetch them). It gets its own venv under the
  cache directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import http.client
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

LOCAL_BIGQUERY_VERSION = "0.3.2"
DUCKDB_VERSION = "1.5.5"
LOCAL_BIGQUERY_PINS = (
    f"local-bigquery=={LOCAL_BIGQUERY_VERSION}",
    f"duckdb=={DUCKDB_VERSION}",
    f"duckdb-extension-icu=={DUCKDB_VERSION}",
    f"duckdb-extension-ducklake=={DUCKDB_VERSION}",
    f"duckdb-extension-spatial=={DUCKDB_VERSION}",
)
EMULATOR_PACKAGES = ("google-cloud-cli-pubsub-emulator", "google-cloud-cli-firestore-emulator")
DEFAULT_PROJECT = "local-project"
BACKENDS = ("pubsub", "firestore", "bigquery")
DEFAULT_SDK_LOCATIONS = ("/usr/lib/google-cloud-sdk", "/usr/share/google-cloud-sdk", "/opt/google-cloud-sdk")
# Env var our BigQuery client factory reads (the official client has no emulator env var).
BIGQUERY_EMULATOR_ENV = "BIGQUERY_EMULATOR_HOST"


class EmulatorUnavailableError(RuntimeError):
    """A backend cannot be provisioned or started on this machine; says what to install."""


def default_cache_dir() -> Path:
    """Where provisioned tools live: ``$LOCALCLOUD_CACHE`` or ``<repo>/.cache/localcloud``."""
    env = os.environ.get("LOCALCLOUD_CACHE")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2] / ".cache" / "localcloud"


# --------------------------------------------------------------------------------------
# Provisioning
# --------------------------------------------------------------------------------------
def sdk_root() -> Path:
    """The Google Cloud SDK root (``gcloud info``, else the Debian package location)."""
    candidates: list[Path] = []
    env = os.environ.get("CLOUDSDK_ROOT_DIR")
    if env:
        candidates.append(Path(env))
    gcloud = shutil.which("gcloud")
    if gcloud:
        try:
            out = subprocess.run(
                [gcloud, "info", "--format=value(installation.sdk_root)"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            ).stdout.strip()
        except subprocess.TimeoutExpired:
            out = ""
        if out:
            candidates.append(Path(out))
    candidates += [Path(p) for p in DEFAULT_SDK_LOCATIONS]
    for candidate in candidates:
        if (candidate / "platform").is_dir():
            return candidate
    raise EmulatorUnavailableError(
        "Google Cloud SDK not found (looked at: "
        + ", ".join(str(c) for c in candidates)
        + "). Install the Google Cloud CLI with the packages "
        + " and ".join(EMULATOR_PACKAGES)
        + "."
    )


def pubsub_jar() -> Path:
    matches = sorted(glob.glob(str(sdk_root() / "platform/pubsub-emulator/lib/cloud-pubsub-emulator-*-all.jar")))
    if not matches:
        raise EmulatorUnavailableError(
            "Pub/Sub emulator jar not found under the Google Cloud SDK; install the package "
            "google-cloud-cli-pubsub-emulator (apt-get install google-cloud-cli-pubsub-emulator)."
        )
    return Path(matches[-1])


def firestore_jar() -> Path:
    jar = sdk_root() / "platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
    if not jar.is_file():
        raise EmulatorUnavailableError(
            "Firestore emulator jar not found under the Google Cloud SDK; install the package "
            "google-cloud-cli-firestore-emulator (apt-get install google-cloud-cli-firestore-emulator)."
        )
    return jar


def java_bin() -> str:
    java = shutil.which("java")
    if not java:
        raise EmulatorUnavailableError(
            "java not found on PATH: the Pub/Sub and Firestore emulators need a Java 11+ runtime "
            "(apt-get install default-jre-headless)."
        )
    return java


def find_python313() -> str:
    """A Python 3.13 interpreter for local-bigquery (it does not run on 3.11)."""
    candidates: list[str] = []
    env = os.environ.get("LOCAL_BIGQUERY_PYTHON")
    if env:
        candidates.append(env)
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates += sorted(glob.glob(os.path.join(pyenv_root, "versions", "3.13.*", "bin", "python3")), reverse=True)
    for name in ("python3.13",):
        found = shutil.which(name)
        if found:
            candidates.append(found)
    candidates += ["/usr/bin/python3.13", "/usr/local/bin/python3.13"]
    for candidate in candidates:
        if not os.access(candidate, os.X_OK):
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sys, venv; print(sys.version_info[:2] == (3, 13))"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if probe.stdout.strip() == "True":
            return candidate
    raise EmulatorUnavailableError(
        "local-bigquery needs Python 3.13 and none was found (tried $LOCAL_BIGQUERY_PYTHON, "
        "pyenv versions 3.13.*, python3.13 on PATH). Install it (pyenv install 3.13) or set LOCAL_BIGQUERY_PYTHON."
    )


def _duckdb_platform() -> str:
    machine = platform.machine().lower()
    return "linux_arm64" if machine in {"aarch64", "arm64"} else "linux_amd64"


@dataclass(frozen=True)
class LocalBigQueryInstall:
    venv: Path
    home: Path

    @property
    def executable(self) -> Path:
        return self.venv / "bin" / "local-bigquery"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (parallel test runs share provisioned caches)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def provision_local_bigquery(cache_dir: Path | None = None, log: IO[str] | None = None) -> LocalBigQueryInstall:
    """Create (once) the local-bigquery venv and its private DuckDB extension home."""
    root = (cache_dir or default_cache_dir()) / f"local-bigquery-{LOCAL_BIGQUERY_VERSION}"
    install = LocalBigQueryInstall(venv=root / "venv", home=root / "home")
    marker = root / ".provisioned"
    with file_lock(root.parent / f".local-bigquery-{LOCAL_BIGQUERY_VERSION}.lock"):
        if marker.is_file() and install.executable.is_file():
            return install
        python = find_python313()
        if install.venv.exists():
            shutil.rmtree(install.venv)
        _say(log, f"provisioning local-bigquery {LOCAL_BIGQUERY_VERSION} with {python} into {install.venv}")
        subprocess.run([python, "-m", "venv", str(install.venv)], check=True)
        pip = subprocess.run(
            [str(install.venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *LOCAL_BIGQUERY_PINS],
            capture_output=True,
            text=True,
            check=False,
        )
        if pip.returncode != 0:
            raise EmulatorUnavailableError(
                f"pip could not install {' '.join(LOCAL_BIGQUERY_PINS)}:\n{pip.stderr[-2000:]}"
            )
        ext_dir = install.home / ".duckdb" / "extensions" / f"v{DUCKDB_VERSION}" / _duckdb_platform()
        ext_dir.mkdir(parents=True, exist_ok=True)
        extensions = glob.glob(
            str(
                install.venv
                / "lib"
                / "python3.13"
                / "site-packages"
                / "duckdb_extension_*"
                / "extensions"
                / f"v{DUCKDB_VERSION}"
                / "*.duckdb_extension"
            )
        )
        if len(extensions) < 3:
            raise EmulatorUnavailableError(
                f"expected 3 DuckDB extension files in the duckdb-extension-* packages, found {extensions}"
            )
        for ext in extensions:
            shutil.copy2(ext, ext_dir / Path(ext).name)
        marker.write_text(f"{LOCAL_BIGQUERY_VERSION}\n")
        return install


def provision(cache_dir: Path | None = None, log: IO[str] | None = None) -> None:
    """Check the Google emulators are present and install local-bigquery; raise clearly if not."""
    java_bin()
    pubsub_jar()
    firestore_jar()
    provision_local_bigquery(cache_dir, log)


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------
BIND_ATTEMPTS = 3
_BIND_ERRORS = ("address already in use", "errno 98", "bindexception", "connection in use")


def port_was_taken(log_text: str) -> bool:
    """Whether a process failed because its port was bound by someone else first."""
    text = log_text.lower()
    return any(marker in text for marker in _BIND_ERRORS)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Backend:
    """One started emulator process, owned by a ``LocalCloud``."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    extra_ports: dict[str, int] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "<no log>"


class LocalCloud:
    """The three local backends, started together and stopped by their own PIDs.

    Example:
        >>> with LocalCloud(project="demo").start() as cloud:  # doctest: +SKIP
        ...     os.environ.update(cloud.env())
    """

    def __init__(
        self,
        project: str = DEFAULT_PROJECT,
        backends: tuple[str, ...] = BACKENDS,
        workdir: Path | None = None,
        cache_dir: Path | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        unknown = set(backends) - set(BACKENDS)
        if unknown:
            raise ValueError(f"unknown backends {sorted(unknown)}; choose from {BACKENDS}")
        self.project = project
        self.wanted = tuple(backends)
        self.cache_dir = cache_dir
        self.startup_timeout = startup_timeout
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="localcloud-"))
        self.backends: dict[str, Backend] = {}

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> LocalCloud:
        """Start every wanted backend in parallel and wait until each answers."""
        try:
            launchers = {
                "pubsub": self._launch_pubsub,
                "firestore": self._launch_firestore,
                "bigquery": self._launch_bigquery,
            }
            for name in self.wanted:
                self.backends[name] = launchers[name]()
            deadline = time.monotonic() + self.startup_timeout
            for name in self.wanted:
                for attempt in range(1, BIND_ATTEMPTS + 1):
                    try:
                        self._wait_ready(self.backends[name], deadline)
                        break
                    except EmulatorUnavailableError:
                        # a free port probed with bind(0) can be taken by another process's outgoing
                        # connection before the emulator binds it: relaunch on a new port
                        if attempt == BIND_ATTEMPTS or not port_was_taken(self.backends[name].log_tail()):
                            raise
                        self.backends[name] = launchers[name]()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop exactly the processes this object started (by PID), then remove its workdir."""
        for backend in list(self.backends.values()):
            proc = backend.process
            if proc.poll() is None:
                proc.terminate()
        for backend in list(self.backends.values()):
            proc = backend.process
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.backends.clear()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalCloud:
        if not self.backends:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pids(self) -> dict[str, int]:
        return {name: b.pid for name, b in self.backends.items()}

    def env(self) -> dict[str, str]:
        """Env vars that point the official clients (and our factories) at these backends."""
        env = {"GOOGLE_CLOUD_PROJECT": self.project, "GCP_PROJECT": self.project}
        if "pubsub" in self.backends:
            env["PUBSUB_EMULATOR_HOST"] = self.backends["pubsub"].host
            env["PUBSUB_PROJECT_ID"] = self.project
        if "firestore" in self.backends:
            env["FIRESTORE_EMULATOR_HOST"] = self.backends["firestore"].host
        if "bigquery" in self.backends:
            env[BIGQUERY_EMULATOR_ENV] = f"http://{self.backends['bigquery'].host}"
        return env

    @contextlib.contextmanager
    def environ(self) -> Iterator[dict[str, str]]:
        """Temporarily export ``env()`` into ``os.environ``."""
        env = self.env()
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield env
        finally:
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old

    # -- state resets ------------------------------------------------------------------
    def reset_firestore(self) -> None:
        """Delete every document in the Firestore emulator (its documented reset endpoint)."""
        host = self.backends["firestore"].host
        url = f"http://{host}/emulator/v1/projects/{self.project}/databases/(default)/documents"
        req = urllib.request.Request(url, method="DELETE")
        with urllib.request.urlopen(req, timeout=10) as resp:
            if resp.status != 200:
                raise RuntimeError(f"Firestore reset answered HTTP {resp.status}")

    # -- launchers ----------------------------------------------------------------------
    def _spawn(
        self, name: str, argv: list[str], env: Mapping[str, str] | None = None
    ) -> tuple[subprocess.Popen[bytes], Path]:
        log_path = self.workdir / f"{name}.log"
        log = open(log_path, "wb")
        try:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                cwd=self.workdir,
            )
        finally:
            log.close()
        return proc, log_path

    def _launch_pubsub(self) -> Backend:
        port = free_port()
        argv = [java_bin(), "-jar", str(pubsub_jar()), "--host=127.0.0.1", f"--port={port}"]
        proc, log = self._spawn("pubsub", argv)
        return Backend("pubsub", port, proc, log)

    def _launch_firestore(self) -> Backend:
        port = free_port()
        argv = [
            java_bin(),
            "-Duser.language=en",
            "-cp",
            str(firestore_jar()),
            "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
            "start",
            "--host=127.0.0.1",
            f"--port={port}",
        ]
        proc, log = self._spawn("firestore", argv)
        return Backend("firestore", port, proc, log)

    def _launch_bigquery(self) -> Backend:
        install = provision_local_bigquery(self.cache_dir)
        port, grpc_port = free_port(), free_port()
        data_dir = self.workdir / "bigquery-data"
        data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            str(install.executable),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--grpc-port",
            str(grpc_port),
            "--project",
            self.project,
            "--data-dir",
            str(data_dir),
        ]
        proc, log = self._spawn("bigquery", argv, env={"HOME": str(install.home)})
        return Backend("bigquery", port, proc, log, extra_ports={"grpc": grpc_port})

    # -- readiness ----------------------------------------------------------------------
    def _probe_url(self, backend: Backend) -> str:
        base = f"http://{backend.host}"
        if backend.name == "pubsub":
            return f"{base}/v1/projects/{self.project}/topics"
        if backend.name == "firestore":
            return f"{base}/"
        return f"{base}/bigquery/v2/projects/{self.project}/datasets"

    def _wait_ready(self, backend: Backend, deadline: float) -> None:
        url = self._probe_url(backend)
        last_error = ""
        while time.monotonic() < deadline:
            if backend.process.poll() is not None:
                raise EmulatorUnavailableError(
                    f"{backend.name} emulator exited with code {backend.process.returncode} during start; "
                    f"log tail:\n{backend.log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if 200 <= resp.status < 300:
                        return
                    last_error = f"HTTP {resp.status}"
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                # HTTPException: another process's server answered on the port (an HTTP/2-only one says
                # "Unexpected HTTP/1.x request"): ours then fails to bind and exits, and is relaunched
                last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)
        raise EmulatorUnavailableError(
            f"{backend.name} emulator on {backend.host} not ready after {self.startup_timeout:.0f}s "
            f"({last_error}); log tail:\n{backend.log_tail()}"
        )


def _say(log: IO[str] | None, text: str) -> None:
    (log or sys.stderr).write(text + "\n")


def main(argv: list[str] | None = None) -> int:
    """``python -m deploy.local.emulators provision`` — install what the tests need."""
    args = argv if argv is not None else sys.argv[1:]
    if args[:1] != ["provision"]:
        sys.stderr.write("usage: python -m deploy.local.emulators provision\n")
        return 2
    try:
        provision(log=sys.stderr)
    except EmulatorUnavailableError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    sys.stderr.write("local backends ready: pubsub + firestore emulator jars found, local-bigquery installed\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
