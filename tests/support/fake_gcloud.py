"""A recording fake of the ``gcloud`` and ``bq`` commands ``phasectl deploy apply|verify`` runs.

``install(bin_dir, state, log)`` writes two executables, ``gcloud`` and ``bq``, into ``bin_dir``
and returns the environment to run them with (``bin_dir`` first on ``PATH``). Each call:

* appends ``{"argv": [...], "returncode": n}`` to the JSONL log (``$FAKE_GCLOUD_LOG``);
* reads and writes the cloud it simulates (``$FAKE_GCLOUD_STATE``; ``read_state``/``write_state``).

It runs a few hundred times per apply, so it starts lean: the state is ``marshal``-ed and JSON
output is written with the C string encoder of ``_json``; importing ``json`` (and ``re`` with
it) would cost more than the rest of a call.

It simulates just enough of Google Cloud for apply and verify: ``describe`` exits 0 with JSON
when the resource exists and 1 with ``NOT_FOUND`` otherwise; ``create``/``update`` change the
state; ``functions deploy`` makes an ACTIVE 2nd-gen function with an Eventarc trigger and the
push subscription Eventarc creates on the trigger topic; ``--update-env-vars`` merges;
``firestore fields ttls update --enable-ttl`` records a TTL policy (``CREATING`` with ``--async``,
as a real long operation starts, else ``ACTIVE``; one TTL field per collection group, the database
first) and ``ttls list`` reports them as the real CLI does (``name`` and ``ttlConfig.state``). It is
strict where the real cloud is: a subscription, job or function needs its topic, a binding
needs its service account or dataset, a flag it does not know fails (exit 2), so a plan that
depends on the wrong order or a missing flag fails here too.

``state["faults"]``: ``[{"prefix": [...argv...], "returncode": n, "stderr": "..."}]`` makes the
first matching call fail that way (for permission errors and the like), without side effects.
"""

from __future__ import annotations

import binascii
import fcntl
import marshal
import os
import sys
from _json import encode_basestring_ascii as _quote

TYPE_CHECKING = False  # not `from typing import ...`: the fake runs once per command, typing costs ~8 ms
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import Any

    State = dict[str, Any]

STATE_ENV = "FAKE_GCLOUD_STATE"
LOG_ENV = "FAKE_GCLOUD_LOG"


# -- for tests ------------------------------------------------------------------------------------
def initial_state(
    project: str = "my-proj",
    number: str = "123456789012",
    datasets: tuple[str, ...] = ("nba_raw", "nba_analytics", "nba_precompute", "nba_predictions"),
    tables: tuple[str, ...] = (),
) -> State:
    """A project with nothing deployed; ``datasets`` and ``tables`` (``dataset.table``) exist already
    (owned by the processors: ``nba_raw`` and the phase 3-5 datasets and tables the gates read).
    The operator is logged in (``state["auth"]``: ``ok``, ``none`` or ``expired``)."""
    return {
        "project": {"projectId": project, "projectNumber": number},
        "auth": "ok",
        "services": [],
        "project_iam": {},  # role -> members (unconditional bindings)
        "project_iam_conditional": [],  # {"role", "member", "condition": {"title", "expression"}}
        "roles": {},  # custom roles: id -> described
        "secrets": {},  # id -> {"iam": {...}, "versions": [{"state", "sha256", "size"}]}; never a value
        "table_iam": {},  # dataset.table -> role -> members
        "service_accounts": {},
        "firestore": {},
        "ttls": {},  # collection group -> {field: TTL state}
        "topics": {},
        "subscriptions": {},
        "functions": {},
        "run_iam": {},
        "triggers": {},
        "jobs": {},
        "datasets": {d: {"location": "US", "iam": {}} for d in datasets},
        "tables": {
            ref: {
                "tableReference": dict(
                    zip(("projectId", "datasetId", "tableId"), (project, *ref.split(".")), strict=True)
                ),
                "schema": {"fields": [{"name": "game_date", "type": "DATE"}]},
            }
            for ref in tables
        },
        "next_id": 100001,
        "faults": [],
    }


def install(bin_dir: Path, state_path: Path, log_path: Path, state: State | None = None) -> dict[str, str]:
    """Put ``gcloud`` and ``bq`` in ``bin_dir``; write ``state``; return the environment to run them with."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    here = os.path.dirname(os.path.abspath(__file__))
    for program in ("gcloud", "bq"):  # imported, not run as a script: its bytecode is cached
        exe = bin_dir / program
        exe.write_text(
            f"#!{sys.executable} -IS\nimport sys\nsys.path.insert(0, {here!r})\nimport fake_gcloud\n"
            f"sys.exit(fake_gcloud.main([{program!r}, *sys.argv[1:]]))\n"
        )
        exe.chmod(0o755)
    if state is not None or not state_path.exists():
        write_state(state_path, state if state is not None else initial_state())
    log_path.touch()
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        STATE_ENV: str(state_path),
        LOG_ENV: str(log_path),
    }


def read_state(path: Path) -> State:
    data: State = marshal.loads(path.read_bytes())
    return data


def write_state(path: Path, state: State) -> None:
    path.write_bytes(marshal.dumps(state))


def read_log(path: Path) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def dumps(obj: Any) -> str:
    """JSON (keys sorted) for the plain data the fake handles, without importing ``json``."""
    if isinstance(obj, str):
        return str(_quote(obj))
    if obj is None or isinstance(obj, bool):
        return {None: "null", True: "true", False: "false"}[obj]
    if isinstance(obj, int | float):
        return repr(obj)
    if isinstance(obj, dict):
        return "{" + ", ".join(f"{_quote(str(k))}: {dumps(v)}" for k, v in sorted(obj.items())) + "}"
    if isinstance(obj, list | tuple):
        return "[" + ", ".join(dumps(v) for v in obj) + "]"
    raise TypeError(f"not JSON data: {obj!r}")


# -- the fake -------------------------------------------------------------------------------------
class Fail(Exception):
    def __init__(self, returncode: int, message: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.message = message


class Args:
    """``--flag=value`` / ``--flag`` and positionals (the plan never passes a value as a separate token)."""

    def __init__(self, tokens: list[str]) -> None:
        self.positional: list[str] = []
        self.flags: dict[str, str | bool] = {}
        self.used: set[str] = set()
        for token in tokens:
            if token.startswith("--"):
                name, eq, value = token[2:].partition("=")
                self.flags[name] = value if eq else True
            else:
                self.positional.append(token)

    def get(self, name: str, default: str | None = None) -> str | None:
        self.used.add(name)
        value = self.flags.get(name)
        if value is True:
            raise Fail(2, f"ERROR: argument --{name}: expected one argument")
        return value if isinstance(value, str) else default

    def need(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise Fail(2, f"ERROR: argument --{name}: Must be specified.")
        return value

    def has(self, name: str) -> bool:
        self.used.add(name)
        return self.flags.get(name) is True

    def done(self, program: str) -> None:
        unknown = sorted(set(self.flags) - self.used - {"format", "project", "quiet"})
        if unknown:
            raise Fail(2, f"ERROR: ({program}) unrecognized arguments: {' '.join('--' + u for u in unknown)}")


def _not_found(what: str) -> Fail:
    return Fail(1, f"ERROR: NOT_FOUND: {what} not found")


def _short(name: str, collection: str) -> str:
    """``projects/P/<collection>/N`` or ``N`` → ``N``."""
    parts = name.split("/")
    if len(parts) == 4 and parts[0] == "projects" and parts[2] == collection:
        return parts[3]
    if "/" in name:
        raise Fail(1, f"ERROR: INVALID_ARGUMENT: bad {collection} name {name!r}")
    return name


def _policy(policy: dict[str, list[str]]) -> dict[str, Any]:
    bindings = [{"role": r, "members": m} for r, m in sorted(policy.items()) if m]
    return {"bindings": bindings, "etag": "BwYfake="} if bindings else {"etag": "ACAB"}


def _add_member(policy: dict[str, list[str]], role: str, member: str) -> dict[str, Any]:
    members = policy.setdefault(role, [])
    if member not in members:
        members.append(member)
        members.sort()
    return _policy(policy)


def _remove_member(policy: dict[str, list[str]], role: str, member: str) -> dict[str, Any]:
    if member not in policy.get(role, []):
        raise Fail(1, f"ERROR: Policy binding with the specified principal and role not found: {member} {role}")
    policy[role].remove(member)
    return _policy(policy)


def _dig(obj: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if key == "basename()":  # the one projection transform the plan uses
            obj = obj.rstrip("/").rsplit("/", 1)[-1] if isinstance(obj, str) else None
        else:
            obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _emit(obj: Any, fmt: str | None) -> str:
    if fmt == "none":
        return ""
    if fmt and fmt.startswith("value(") and fmt.endswith(")"):
        if isinstance(obj, list):  # a list command: one line per resource
            return "".join(_emit(item, fmt) for item in obj)
        value = _dig(obj, fmt[len("value(") : -1])
        return "" if value is None else f"{value}\n"
    if fmt not in (None, "json"):
        raise Fail(2, f"ERROR: the fake does not simulate --format={fmt}")
    return dumps(obj) + "\n"


class Cloud:
    def __init__(self, state: State, cwd: str) -> None:
        self.s = state
        self.cwd = cwd
        self.project = state["project"]["projectId"]
        self.number = state["project"]["projectNumber"]

    # -- helpers
    def check_project(self, args: Args, required: bool = True) -> None:
        project = args.get("project")
        if project is None and required:
            raise Fail(1, "ERROR: (gcloud) The required property [project] is not currently set.")
        if project is not None and project != self.project:
            raise Fail(1, f"ERROR: PERMISSION_DENIED: project {project} not found or permission denied")

    def topic_path(self, name: str) -> str:
        return f"projects/{self.project}/topics/{name}"

    def need_topic(self, name: str) -> str:
        short = _short(name, "topics")
        if short not in self.s["topics"]:
            raise Fail(1, f"ERROR: NOT_FOUND: Resource not found (resource={short}).")
        return short

    def need_account(self, member: str) -> None:
        kind, _, email = member.partition(":")
        if kind not in ("serviceAccount", "user", "group", "domain") and member not in (
            "allUsers",
            "allAuthenticatedUsers",
        ):
            raise Fail(1, f"ERROR: INVALID_ARGUMENT: invalid member {member!r}")
        if kind == "serviceAccount" and email.endswith(f"@{self.project}.iam.gserviceaccount.com"):
            if email not in self.s["service_accounts"]:
                raise Fail(1, f"ERROR: INVALID_ARGUMENT: Service account {email} does not exist.")

    def next_id(self) -> int:
        value = int(self.s["next_id"])
        self.s["next_id"] = value + 1
        return value

    # -- gcloud
    def services_enable(self, args: Args) -> str:
        self.check_project(args)
        self.s["services"] = sorted(set(self.s["services"]) | set(args.positional))
        return ""

    def projects_describe(self, args: Args) -> str:
        (project,) = args.positional
        if project != self.project:
            raise Fail(1, f"ERROR: PERMISSION_DENIED: project {project}")
        return _emit(
            {"projectId": self.project, "projectNumber": self.number, "lifecycleState": "ACTIVE"}, args.get("format")
        )

    def _project_args(self, args: Args) -> tuple[str, str, dict[str, str] | None]:
        (project,) = args.positional
        if project != self.project:
            raise Fail(1, f"ERROR: PERMISSION_DENIED: project {project}")
        raw = args.get("condition")
        condition = None
        if raw not in ("None", None):
            assert raw is not None
            condition = dict(part.partition("=")[::2] for part in raw.split(","))
            if set(condition) != {"expression", "title"}:
                raise Fail(2, f"ERROR: argument --condition: expected expression and title, got {sorted(condition)}")
        return args.need("member"), args.need("role"), condition

    def project_policy(self) -> dict[str, Any]:
        policy = _policy(self.s["project_iam"])
        for entry in self.s["project_iam_conditional"]:
            policy.setdefault("bindings", []).append(
                {"role": entry["role"], "members": [entry["member"]], "condition": entry["condition"]}
            )
        return policy

    def projects_binding(self, args: Args) -> str:
        member, role, condition = self._project_args(args)
        self.need_account(member)
        if condition is None:
            _add_member(self.s["project_iam"], role, member)
        else:
            entry = {"role": role, "member": member, "condition": condition}
            if entry not in self.s["project_iam_conditional"]:
                self.s["project_iam_conditional"].append(entry)
        return _emit(self.project_policy(), args.get("format"))

    def projects_remove_binding(self, args: Args) -> str:
        member, role, condition = self._project_args(args)
        if args.has("all"):
            _remove_member(self.s["project_iam"], role, member)
            self.s["project_iam_conditional"] = [
                e for e in self.s["project_iam_conditional"] if (e["role"], e["member"]) != (role, member)
            ]
        elif condition is None:
            _remove_member(self.s["project_iam"], role, member)
        else:
            entry = {"role": role, "member": member, "condition": condition}
            if entry not in self.s["project_iam_conditional"]:
                raise Fail(1, "ERROR: Policy binding with the specified principal, role, and condition not found!")
            self.s["project_iam_conditional"].remove(entry)
        return _emit(self.project_policy(), args.get("format"))

    def projects_policy(self, args: Args) -> str:
        (project,) = args.positional
        if project != self.project:
            raise Fail(1, f"ERROR: PERMISSION_DENIED: project {project}")
        return _emit(self.project_policy(), args.get("format"))

    # -- custom roles
    def roles_describe(self, args: Args) -> str:
        self.check_project(args)
        (role,) = args.positional
        if role not in self.s["roles"]:
            raise Fail(1, f"ERROR: NOT_FOUND: The role named projects/{self.project}/roles/{role} was not found.")
        return _emit(self.s["roles"][role], args.get("format"))

    def _role_settings(self, args: Args, described: dict[str, Any]) -> None:
        for flag, key in (("title", "title"), ("description", "description"), ("stage", "stage")):
            if (value := args.get(flag)) is not None:
                described[key] = value
        if (permissions := args.get("permissions")) is not None:
            described["includedPermissions"] = sorted(permissions.split(","))

    def roles_create(self, args: Args) -> str:
        self.check_project(args)
        (role,) = args.positional
        if role in self.s["roles"]:
            raise Fail(1, f"ERROR: ALREADY_EXISTS: A role named {role} in projects/{self.project} already exists.")
        described: dict[str, Any] = {"name": f"projects/{self.project}/roles/{role}", "etag": "BwYfake="}
        self._role_settings(args, described)
        self.s["roles"][role] = described
        return ""

    def roles_update(self, args: Args) -> str:
        self.roles_describe(Args([args.positional[0], f"--project={self.project}"]))
        self.check_project(args)
        self._role_settings(args, self.s["roles"][args.positional[0]])
        return ""

    def _need_role(self, role: str) -> None:
        prefix = f"projects/{self.project}/roles/"
        if role.startswith(prefix) and role[len(prefix) :] not in self.s["roles"]:
            raise Fail(1, f"ERROR: INVALID_ARGUMENT: Role ({role}) does not exist in the resource's hierarchy.")

    # -- auth
    def auth_token(self, args: Args) -> str:
        return "" if args.get("format") == "none" else "ya29.fake-token\n"

    def firestore_describe(self, args: Args) -> str:
        self.check_project(args)
        database = args.need("database")
        if database not in self.s["firestore"]:
            raise Fail(1, f"ERROR: NOT_FOUND: Database {database} does not exist")
        return _emit(self.s["firestore"][database], args.get("format"))

    def firestore_create(self, args: Args) -> str:
        self.check_project(args)
        database = args.need("database")
        if database in self.s["firestore"]:
            raise Fail(1, f"ERROR: ALREADY_EXISTS: Database {database} already exists")
        self.s["firestore"][database] = {"locationId": args.need("location"), "type": args.need("type").upper()}
        return ""

    def _ttl_database(self, args: Args) -> str:
        self.check_project(args)
        database = args.get("database", "(default)") or "(default)"
        if database not in self.s["firestore"]:
            raise Fail(1, f"ERROR: NOT_FOUND: Database {database} does not exist")
        return database

    def ttls_update(self, args: Args) -> str:
        self._ttl_database(args)  # the database must exist first
        (field,) = args.positional
        group = args.need("collection-group")
        enable, disable = args.has("enable-ttl"), args.has("disable-ttl")
        if enable == disable:
            raise Fail(
                2,
                "ERROR: (gcloud.firestore.fields.ttls.update) Exactly one of (--disable-ttl | --enable-ttl) "
                "must be specified.",
            )
        fields = self.s.setdefault("ttls", {}).setdefault(group, {})
        if enable:
            others = sorted(f for f in fields if f != field)
            if others:
                raise Fail(
                    1,
                    f"ERROR: FAILED_PRECONDITION: collection group {group} already has a TTL field ({others[0]}); "
                    "only one field can be the TTL field of a collection group",
                )
            # --async returns while existing documents are scanned; a finished operation is ACTIVE
            fields[field] = "CREATING" if args.has("async") else "ACTIVE"
        else:
            args.has("async")
            fields.pop(field, None)
        return ""

    def ttls_list(self, args: Args) -> str:
        database = self._ttl_database(args)
        wanted = args.get("collection-group")
        listed = [
            {
                "name": f"projects/{self.project}/databases/{database}/collectionGroups/{group}/fields/{field}",
                "ttlConfig": {"state": state},
            }
            for group, fields in sorted(self.s.setdefault("ttls", {}).items())
            if wanted in (None, group)
            for field, state in sorted(fields.items())
        ]
        return _emit(listed, args.get("format"))

    def sa_describe(self, args: Args) -> str:
        self.check_project(args)
        (email,) = args.positional
        if email not in self.s["service_accounts"]:
            raise Fail(1, f"ERROR: NOT_FOUND: Unknown service account {email}")
        return _emit(self.s["service_accounts"][email], args.get("format"))

    def sa_create(self, args: Args) -> str:
        self.check_project(args)
        (account,) = args.positional
        if not (6 <= len(account) <= 30):
            raise Fail(2, f"ERROR: argument NAME: Bad value [{account}]")
        email = f"{account}@{self.project}.iam.gserviceaccount.com"
        if email in self.s["service_accounts"]:
            raise Fail(1, f"ERROR: ALREADY_EXISTS: Service account {account} already exists")
        self.s["service_accounts"][email] = {"email": email, "displayName": args.get("display-name", "")}
        return ""

    def _need_sa(self, email: str) -> dict[str, Any]:
        if email not in self.s["service_accounts"]:
            raise Fail(1, f"ERROR: NOT_FOUND: Unknown service account {email}")
        account: dict[str, Any] = self.s["service_accounts"][email]
        return account

    def sa_binding(self, args: Args) -> str:
        self.check_project(args)
        if args.get("condition") not in ("None", None):
            raise Fail(2, "ERROR: conditions on service accounts are not simulated")
        account = self._need_sa(args.positional[0])
        member = args.need("member")
        self.need_account(member)
        return _emit(_add_member(account.setdefault("iam", {}), args.need("role"), member), args.get("format"))

    def sa_remove_binding(self, args: Args) -> str:
        self.check_project(args)
        account = self._need_sa(args.positional[0])
        return _emit(_remove_member(account.setdefault("iam", {}), args.need("role"), args.need("member")), None)

    def sa_policy(self, args: Args) -> str:
        self.check_project(args)
        return _emit(_policy(self._need_sa(args.positional[0]).get("iam", {})), args.get("format"))

    # -- Secret Manager (never a value: a version keeps its size and sha256)
    def _need_secret(self, name: str) -> dict[str, Any]:
        if name not in self.s["secrets"]:
            raise Fail(
                1, f"ERROR: (gcloud.secrets) NOT_FOUND: Secret [projects/{self.number}/secrets/{name}] not found."
            )
        secret: dict[str, Any] = self.s["secrets"][name]
        return secret

    def secrets_describe(self, args: Args) -> str:
        self.check_project(args)
        (name,) = args.positional
        self._need_secret(name)
        return _emit(
            {"name": f"projects/{self.number}/secrets/{name}", "replication": {"automatic": {}}}, args.get("format")
        )

    def secrets_create(self, args: Args) -> str:
        self.check_project(args)
        (name,) = args.positional
        if name in self.s["secrets"]:
            raise Fail(1, f"ERROR: (gcloud.secrets.create) ALREADY_EXISTS: Secret [{name}] already exists.")
        if args.get("replication-policy") not in (None, "automatic"):
            raise Fail(2, "ERROR: only --replication-policy=automatic is simulated")
        self.s["secrets"][name] = {"iam": {}, "versions": []}
        return ""

    def secrets_binding(self, args: Args) -> str:
        self.check_project(args)
        if args.get("condition") not in ("None", None):
            raise Fail(2, "ERROR: conditions on secrets are not simulated")
        secret = self._need_secret(args.positional[0])
        member = args.need("member")
        self.need_account(member)
        return _emit(_add_member(secret["iam"], args.need("role"), member), args.get("format"))

    def secrets_remove_binding(self, args: Args) -> str:
        self.check_project(args)
        secret = self._need_secret(args.positional[0])
        return _emit(_remove_member(secret["iam"], args.need("role"), args.need("member")), None)

    def secrets_policy(self, args: Args) -> str:
        self.check_project(args)
        return _emit(_policy(self._need_secret(args.positional[0])["iam"]), args.get("format"))

    def secret_versions_add(self, args: Args) -> str:
        self.check_project(args)
        secret = self._need_secret(args.positional[0])
        if args.need("data-file") != "-":
            raise Fail(2, "ERROR: the fake reads a version only from stdin (--data-file=-)")
        import hashlib

        data = sys.stdin.buffer.read()
        if not data:
            raise Fail(1, "ERROR: (gcloud.secrets.versions.add) INVALID_ARGUMENT: Secret Payload cannot be empty.")
        secret["versions"].append({"state": "ENABLED", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
        return ""

    def secret_versions_describe(self, args: Args) -> str:
        self.check_project(args)
        (version,) = args.positional
        secret = self._need_secret(args.need("secret"))
        versions = secret["versions"]
        index = len(versions) if version == "latest" else int(version)
        if not 1 <= index <= len(versions):
            raise Fail(1, f"ERROR: (gcloud.secrets.versions.describe) NOT_FOUND: Secret Version [{version}] not found.")
        found = versions[index - 1]
        return _emit(
            {"name": f"projects/{self.number}/secrets/x/versions/{index}", "state": found["state"]}, args.get("format")
        )

    def topics_describe(self, args: Args) -> str:
        self.check_project(args)
        short = self.need_topic(args.positional[0])
        return _emit({"name": self.topic_path(short)}, args.get("format"))

    def topics_create(self, args: Args) -> str:
        self.check_project(args)
        for name in args.positional:
            short = _short(name, "topics")
            if short in self.s["topics"]:
                raise Fail(1, f"ERROR: ALREADY_EXISTS: Resource already exists (resource={short}).")
            self.s["topics"][short] = {"iam": {}}
        return ""

    def topics_binding(self, args: Args) -> str:
        self.check_project(args)
        short = self.need_topic(args.positional[0])
        member = args.need("member")
        self.need_account(member)
        return _emit(_add_member(self.s["topics"][short]["iam"], args.need("role"), member), args.get("format"))

    def topics_remove_binding(self, args: Args) -> str:
        self.check_project(args)
        short = self.need_topic(args.positional[0])
        return _emit(_remove_member(self.s["topics"][short]["iam"], args.need("role"), args.need("member")), None)

    def topics_policy(self, args: Args) -> str:
        self.check_project(args)
        return _emit(_policy(self.s["topics"][self.need_topic(args.positional[0])]["iam"]), args.get("format"))

    def topics_list_subscriptions(self, args: Args) -> str:
        self.check_project(args)
        path = self.topic_path(self.need_topic(args.positional[0]))
        names = sorted(
            f"projects/{self.project}/subscriptions/{name}"
            for name, sub in self.s["subscriptions"].items()
            if sub["topic"] == path
        )
        return _emit(names, args.get("format"))

    def need_subscription(self, name: str) -> str:
        short = _short(name, "subscriptions")
        if short not in self.s["subscriptions"]:
            raise Fail(1, f"ERROR: NOT_FOUND: Resource not found (resource={short}).")
        return short

    def subscriptions_describe(self, args: Args) -> str:
        self.check_project(args)
        short = self.need_subscription(args.positional[0])
        sub = {k: v for k, v in self.s["subscriptions"][short].items() if k != "iam"}
        return _emit({"name": f"projects/{self.project}/subscriptions/{short}", **sub}, args.get("format"))

    def _subscription_settings(self, args: Args, sub: dict[str, Any]) -> None:
        if (retention := args.get("message-retention-duration")) is not None:
            sub["messageRetentionDuration"] = retention
        if (deadline := args.get("ack-deadline")) is not None:
            sub["ackDeadlineSeconds"] = int(deadline)
        if (expiration := args.get("expiration-period")) is not None:
            sub["expirationPolicy"] = {} if expiration == "never" else {"ttl": expiration}
        dead_letter = args.get("dead-letter-topic")
        attempts = args.get("max-delivery-attempts")
        if attempts is not None and dead_letter is None:
            raise Fail(2, "ERROR: argument --max-delivery-attempts: requires --dead-letter-topic")
        if dead_letter is not None:
            count = int(attempts or 5)
            if not 5 <= count <= 100:
                raise Fail(2, "ERROR: argument --max-delivery-attempts: Value must be between 5 and 100")
            sub["deadLetterPolicy"] = {
                "deadLetterTopic": self.topic_path(self.need_topic(dead_letter)),
                "maxDeliveryAttempts": count,
            }

    def subscriptions_create(self, args: Args) -> str:
        self.check_project(args)
        (name,) = args.positional
        short = _short(name, "subscriptions")
        if short in self.s["subscriptions"]:
            raise Fail(1, f"ERROR: ALREADY_EXISTS: Resource already exists (resource={short}).")
        sub: dict[str, Any] = {
            "topic": self.topic_path(self.need_topic(args.need("topic"))),
            "ackDeadlineSeconds": 10,
            "messageRetentionDuration": "604800s",
            "iam": {},
        }
        self._subscription_settings(args, sub)
        self.s["subscriptions"][short] = sub
        return ""

    def subscriptions_update(self, args: Args) -> str:
        self.check_project(args)
        short = self.need_subscription(args.positional[0])
        self._subscription_settings(args, self.s["subscriptions"][short])
        return ""

    def subscriptions_binding(self, args: Args) -> str:
        self.check_project(args)
        short = self.need_subscription(args.positional[0])
        member = args.need("member")
        self.need_account(member)
        policy = self.s["subscriptions"][short]["iam"]
        return _emit(_add_member(policy, args.need("role"), member), args.get("format"))

    def subscriptions_remove_binding(self, args: Args) -> str:
        self.check_project(args)
        short = self.need_subscription(args.positional[0])
        policy = self.s["subscriptions"][short]["iam"]
        return _emit(_remove_member(policy, args.need("role"), args.need("member")), None)

    def subscriptions_policy(self, args: Args) -> str:
        self.check_project(args)
        short = self.need_subscription(args.positional[0])
        return _emit(_policy(self.s["subscriptions"][short]["iam"]), args.get("format"))

    def need_function(self, args: Args) -> dict[str, Any]:
        self.check_project(args)
        name = args.positional[0]
        region = args.need("region")
        fn = self.s["functions"].get(name)
        if fn is None or fn["region"] != region:
            raise Fail(
                1,
                f"ERROR: (gcloud.functions) ResponseError: status=[404], code=[Ok], message=[Function "
                f"{name} in region {region} in project {self.project} does not exist]",
            )
        return dict(fn)

    def functions_describe(self, args: Args) -> str:
        args.has("gen2")
        fn = self.need_function(args)
        return _emit(fn["described"], args.get("format"))

    def functions_deploy(self, args: Args) -> str:
        self.check_project(args)
        if not args.has("gen2"):
            raise Fail(1, "ERROR: only 2nd gen functions are simulated (pass --gen2)")
        (name,) = args.positional
        region = args.need("region")
        existing = self.s["functions"].get(name)
        described: dict[str, Any] = (
            marshal.loads(marshal.dumps(existing["described"]))
            if existing
            else {
                "name": f"projects/{self.project}/locations/{region}/functions/{name}",
                "environment": "GEN_2",
                "buildConfig": {},
                "serviceConfig": {
                    "service": f"projects/{self.project}/locations/{region}/services/{name}",
                    "uri": f"https://{name}-fake-{region}.a.run.app",
                    "serviceAccountEmail": f"{self.number}-compute@developer.gserviceaccount.com",
                    "environmentVariables": {},
                    "ingressSettings": "ALLOW_ALL",
                },
            }
        )
        build, service = described["buildConfig"], described["serviceConfig"]
        for flag, key in (("runtime", "runtime"), ("entry-point", "entryPoint")):
            if (value := args.get(flag)) is not None:
                build[key] = value
            elif existing is None:
                raise Fail(2, f"ERROR: argument --{flag}: Must be specified.")
        source = args.get("source")
        if source is not None:
            if not os.path.isfile(os.path.join(self.cwd, source, "main.py")):
                raise Fail(1, f"ERROR: (gcloud.functions.deploy) no main.py in --source={source}")
            build["source"] = source
        elif existing is None:
            raise Fail(1, "ERROR: (gcloud.functions.deploy) --source is required (no main.py in the current directory)")
        if (account := args.get("service-account")) is not None:
            self.need_account(f"serviceAccount:{account}")
            service["serviceAccountEmail"] = account
        for flag, key, convert in (
            ("memory", "availableMemory", str),
            ("timeout", "timeoutSeconds", lambda v: int(v.rstrip("s"))),
            ("min-instances", "minInstanceCount", int),
            ("max-instances", "maxInstanceCount", int),
        ):
            if (value := args.get(flag)) is not None:
                service[key] = convert(value)
        env = service.setdefault("environmentVariables", {})
        if (pairs := args.get("set-env-vars")) is not None:
            env.clear()
            env.update(dict(pair.split("=", 1) for pair in pairs.split(",") if pair))
        if (pairs := args.get("update-env-vars")) is not None:
            env.update(dict(pair.split("=", 1) for pair in pairs.split(",") if pair))
        if (names := args.get("remove-env-vars")) is not None:
            for key in names.split(","):
                env.pop(key, None)
        if args.has("clear-env-vars"):
            env.clear()
        if args.has("clear-secrets"):
            service.pop("secretEnvironmentVariables", None)
        if (pairs := args.get("set-secrets")) is not None:  # ENV=secret:version,...
            mounted = []
            for pair in pairs.split(","):
                key, _, ref = pair.partition("=")
                secret_name, _, version = ref.partition(":")
                secret = self._need_secret(secret_name)
                if not any(v["state"] == "ENABLED" for v in secret["versions"]):
                    raise Fail(1, f"ERROR: (gcloud.functions.deploy) Secret {secret_name} has no enabled version")
                accessor = f"serviceAccount:{service['serviceAccountEmail']}"
                if accessor not in secret["iam"].get("roles/secretmanager.secretAccessor", []):
                    raise Fail(
                        1,
                        f"ERROR: (gcloud.functions.deploy) Permission denied on secret: {secret_name} for "
                        f"Revision service account {service['serviceAccountEmail']}",
                    )
                mounted.append({"key": key, "projectId": self.project, "secret": secret_name, "version": version})
            service["secretEnvironmentVariables"] = mounted
        clash = sorted(set(env) & {m["key"] for m in service.get("secretEnvironmentVariables", [])})
        if clash:
            raise Fail(
                1,
                f"ERROR: (gcloud.functions.deploy) Cannot update environment variable [{clash[0]}] to the given type "
                "because it has already been set with a different type.",
            )
        topic = args.get("trigger-topic")
        trigger_account = args.get("trigger-service-account")
        if trigger_account is not None:
            self.need_account(f"serviceAccount:{trigger_account}")
        retry = args.has("retry")
        no_retry = args.has("no-retry")
        if topic is None and existing is None:
            raise Fail(1, "ERROR: only Pub/Sub-triggered functions are simulated (pass --trigger-topic)")
        if topic is not None:
            short = self.need_topic(topic)
            old = described.get("eventTrigger") or {}
            account = trigger_account or old.get("serviceAccountEmail") or service["serviceAccountEmail"]
            trigger_path = old.get("trigger")
            if old.get("pubsubTopic") != self.topic_path(short):  # a new trigger, with its own subscription
                if trigger_path:
                    self._drop_trigger(trigger_path)
                trigger_path = self._make_trigger(name, region, short, account, service["uri"])
            elif account != old.get("serviceAccountEmail"):  # the trigger's identity changes in place
                arc = self.s["triggers"][trigger_path.rsplit("/", 1)[-1]]
                arc["serviceAccount"] = account
                push = self.s["subscriptions"][arc["transport"]["pubsub"]["subscription"].rsplit("/", 1)[-1]]
                push["pushConfig"]["oidcToken"]["serviceAccountEmail"] = account
            described["eventTrigger"] = {
                "trigger": trigger_path,
                "triggerRegion": region,
                "eventType": "google.cloud.pubsub.topic.v1.messagePublished",
                "pubsubTopic": self.topic_path(short),
                "serviceAccountEmail": account,
                "retryPolicy": "RETRY_POLICY_RETRY" if retry else "RETRY_POLICY_DO_NOT_RETRY",
            }
        elif retry or no_retry:
            described["eventTrigger"]["retryPolicy"] = "RETRY_POLICY_RETRY" if retry else "RETRY_POLICY_DO_NOT_RETRY"
        if args.has("allow-unauthenticated"):
            _add_member(self.s["run_iam"].setdefault(name, {}), "roles/run.invoker", "allUsers")
        args.has("no-allow-unauthenticated")
        described["state"] = "ACTIVE"
        self.s["run_iam"].setdefault(name, {})
        self.s["functions"][name] = {"region": region, "described": described}
        return ""

    def _make_trigger(self, function: str, region: str, topic: str, account: str, uri: str) -> str:
        n = self.next_id()
        trigger = f"{function}-{n}"
        subscription = f"eventarc-{region}-{trigger}-sub-{self.next_id()}"
        path = f"projects/{self.project}/locations/{region}/triggers/{trigger}"
        sub_path = f"projects/{self.project}/subscriptions/{subscription}"
        self.s["triggers"][trigger] = {
            "name": path,
            "serviceAccount": account,
            "destination": {"cloudRun": {"service": function, "region": region}},
            "transport": {"pubsub": {"topic": self.topic_path(topic), "subscription": sub_path}},
        }
        self.s["subscriptions"][subscription] = {
            "topic": self.topic_path(topic),
            "ackDeadlineSeconds": 600,
            "messageRetentionDuration": "86400s",
            "pushConfig": {"pushEndpoint": uri, "oidcToken": {"serviceAccountEmail": account}},
            "labels": {"goog-eventarc": ""},
            "iam": {},
        }
        return path

    def _drop_trigger(self, path: str) -> None:
        trigger = self.s["triggers"].pop(path.rsplit("/", 1)[-1], None)
        if trigger:
            self.s["subscriptions"].pop(trigger["transport"]["pubsub"]["subscription"].rsplit("/", 1)[-1], None)

    def functions_invoker(self, args: Args) -> str:
        self.need_function(args)
        member = args.need("member")
        self.need_account(member)
        return _emit(
            _add_member(self.s["run_iam"][args.positional[0]], "roles/run.invoker", member), args.get("format")
        )

    def trigger_describe(self, args: Args) -> str:
        self.check_project(args)
        args.need("location")
        (name,) = args.positional
        short = name.rsplit("/", 1)[-1]
        if short not in self.s["triggers"]:
            raise Fail(1, f"ERROR: NOT_FOUND: Resource '{name}' was not found")
        return _emit(self.s["triggers"][short], args.get("format"))

    def run_policy(self, args: Args) -> str:
        self.check_project(args)
        args.need("region")
        (service,) = args.positional
        if service not in self.s["run_iam"]:
            raise Fail(1, f"ERROR: NOT_FOUND: Cannot find service [{service}]")
        policy = self.s["run_iam"][service]
        bindings = [{"role": r, "members": m} for r, m in sorted(policy.items()) if m]
        return _emit({"bindings": bindings, "etag": "BwYfake="} if bindings else {"etag": "ACAB"}, args.get("format"))

    def run_remove_binding(self, args: Args) -> str:
        self.check_project(args)
        args.need("region")
        (service,) = args.positional
        if service not in self.s["run_iam"]:
            raise Fail(1, f"ERROR: NOT_FOUND: Cannot find service [{service}]")
        return _emit(_remove_member(self.s["run_iam"][service], args.need("role"), args.need("member")), None)

    def job_describe(self, args: Args) -> str:
        self.check_project(args)
        location = args.need("location")
        (name,) = args.positional
        job = self.s["jobs"].get(name)
        if job is None or job["location"] != location:
            raise Fail(1, f"ERROR: NOT_FOUND: Job not found: projects/{self.project}/locations/{location}/jobs/{name}")
        return _emit(job["described"], args.get("format"))

    def _job_settings(self, args: Args, described: dict[str, Any]) -> None:
        if (schedule := args.get("schedule")) is not None:
            if len(schedule.split()) != 5:
                raise Fail(1, f"ERROR: INVALID_ARGUMENT: Schedule has incorrect syntax: {schedule}")
            described["schedule"] = schedule
        if (zone := args.get("time-zone")) is not None:
            described["timeZone"] = zone
        target = described.setdefault("pubsubTarget", {})
        if (topic := args.get("topic")) is not None:
            if "/" not in topic:  # as gcloud: resolved while flags parse, before a later --project applies
                raise Fail(
                    1,
                    "ERROR: (gcloud) value for field [projectsId] in collection [pubsub.projects.topics] "
                    "is required but was not provided",
                )
            target["topicName"] = self.topic_path(self.need_topic(topic))
        if (body := args.get("message-body")) is not None:
            target["data"] = binascii.b2a_base64(body.encode(), newline=False).decode()

    def job_create(self, args: Args) -> str:
        self.check_project(args)
        location = args.need("location")
        (name,) = args.positional
        if name in self.s["jobs"]:
            raise Fail(
                1, f"ERROR: ALREADY_EXISTS: Job projects/{self.project}/locations/{location}/jobs/{name} already exists"
            )
        described: dict[str, Any] = {
            "name": f"projects/{self.project}/locations/{location}/jobs/{name}",
            "state": "ENABLED",
            "timeZone": "Etc/UTC",
        }
        for required in ("schedule", "topic"):
            args.need(required)
        self._job_settings(args, described)
        self.s["jobs"][name] = {"location": location, "described": described}
        return ""

    def job_update(self, args: Args) -> str:
        self.job_describe(
            Args([args.positional[0], f"--location={args.need('location')}", f"--project={self.project}"])
        )
        self.check_project(args)
        self._job_settings(args, self.s["jobs"][args.positional[0]]["described"])
        return ""

    # -- bq
    def _bq_ref(self, ref: str) -> tuple[str, str | None]:
        project, _, rest = ref.partition(":")
        if not rest:
            raise Fail(1, f"BigQuery error: a reference needs the project: {ref}")
        if project != self.project:
            raise Fail(2, f"BigQuery error: Access Denied: Project {project}")
        dataset, _, table = rest.partition(".")
        return dataset, table or None

    def _bq_table(self, dataset: str, table: str) -> dict[str, Any]:
        found = self.s["tables"].get(f"{dataset}.{table}")
        if found is None:
            raise Fail(2, f"BigQuery error in show operation: Not found: Table {self.project}:{dataset}.{table}")
        return dict(found)

    def bq_show(self, args: Args) -> str:
        (ref,) = args.positional
        dataset, table = self._bq_ref(ref)
        if args.has("dataset") or table is None:
            if table is not None or dataset not in self.s["datasets"]:
                raise Fail(2, f"BigQuery error in show operation: Not found: Dataset {ref}")
            found = {
                "datasetReference": {"projectId": self.project, "datasetId": dataset},
                "location": self.s["datasets"][dataset]["location"],
            }
            return _emit(found, args.get("format"))
        return _emit(self._bq_table(dataset, table), args.get("format"))

    def _schema(self, args: Args) -> list[dict[str, Any]]:
        path = os.path.join(self.cwd, args.need("schema"))
        if not os.path.isfile(path):
            raise Fail(1, f"BigQuery error: schema file {path} not found")
        with open(path, encoding="utf-8") as handle:
            import json  # only here: bq mk/update read a JSON schema file

            fields: list[dict[str, Any]] = json.load(handle)
        return fields

    def _table_settings(self, args: Args, table: dict[str, Any]) -> None:
        if (description := args.get("description")) is not None:
            table["description"] = description
        if (seconds := args.get("time_partitioning_expiration")) is not None:
            table.setdefault("timePartitioning", {})["expirationMs"] = str(int(seconds) * 1000)
        if (fields := args.get("clustering_fields")) is not None:
            table["clustering"] = {"fields": fields.split(",")}

    def bq_mk(self, args: Args, location: str | None) -> str:
        (ref,) = args.positional
        dataset, table = self._bq_ref(ref)
        if args.has("dataset"):
            if dataset in self.s["datasets"]:
                raise Fail(2, f"BigQuery error in mk operation: Dataset '{ref}' already exists.")
            self.s["datasets"][dataset] = {"location": location or "US", "iam": {}}
            return f"Dataset '{ref}' successfully created.\n"
        if not args.has("table") or table is None:
            raise Fail(2, "bq mk: only --dataset and --table are simulated")
        if dataset not in self.s["datasets"]:
            raise Fail(2, f"BigQuery error in mk operation: Not found: Dataset {self.project}:{dataset}")
        if f"{dataset}.{table}" in self.s["tables"]:
            raise Fail(2, f"BigQuery error in mk operation: Table '{ref}' already exists.")
        fields = self._schema(args)
        partition_field = args.get("time_partitioning_field")
        kind = args.get("time_partitioning_type")
        described: dict[str, Any] = {
            "tableReference": {"projectId": self.project, "datasetId": dataset, "tableId": table},
            "schema": {"fields": fields},
        }
        if kind or partition_field:
            if partition_field and partition_field not in {f["name"] for f in fields}:
                raise Fail(
                    2,
                    "BigQuery error in mk operation: The field specified for partitioning cannot be found in the "
                    f"schema: {partition_field}",
                )
            described["timePartitioning"] = {
                "type": kind or "DAY",
                **({"field": partition_field} if partition_field else {}),
            }
        self._table_settings(args, described)
        self.s["tables"][f"{dataset}.{table}"] = described
        return f"Table '{ref}' successfully created.\n"

    def bq_update(self, args: Args) -> str:
        (ref,) = args.positional
        if not args.has("table"):
            raise Fail(2, "bq update: only --table is simulated")
        dataset, table = self._bq_ref(ref)
        assert table is not None
        described = self._bq_table(dataset, table)
        if args.get("schema") is not None:
            new = {f["name"]: f for f in self._schema(args)}
            for old in described["schema"]["fields"]:
                if old["name"] not in new or new[old["name"]]["type"] != old["type"]:
                    raise Fail(
                        2,
                        f"BigQuery error in update operation: Provided Schema does not match Table {ref}. "
                        f"Field {old['name']} is missing or has changed type.",
                    )
            described["schema"] = {"fields": list(new.values())}
        self._table_settings(args, described)
        self.s["tables"][f"{dataset}.{table}"] = described
        return f"Table '{ref}' successfully updated.\n"

    def _bq_policy(self, args: Args, command: str) -> dict[str, list[str]]:
        """The IAM policy ``--dataset`` or ``--table`` names (one of the two is required here)."""
        (ref,) = args.positional
        dataset, table = self._bq_ref(ref)
        if args.has("dataset") == args.has("table"):
            raise Fail(2, f"bq {command}: pass exactly one of --dataset and --table")
        if args.has("dataset"):
            if table is not None or dataset not in self.s["datasets"]:
                raise Fail(2, f"BigQuery error in {command} operation: Not found: Dataset {ref}")
            policy: dict[str, list[str]] = self.s["datasets"][dataset]["iam"]
            return policy
        if table is None or f"{dataset}.{table}" not in self.s["tables"]:
            raise Fail(2, f"BigQuery error in {command} operation: Not found: Table {ref}")
        table_policy: dict[str, list[str]] = self.s["table_iam"].setdefault(f"{dataset}.{table}", {})
        return table_policy

    def bq_binding(self, args: Args) -> str:
        policy = self._bq_policy(args, "add-iam-policy-binding")
        member, role = args.need("member"), args.need("role")
        self.need_account(member)
        self._need_role(role)
        return _emit(_add_member(policy, role, member), "json")

    def bq_remove_binding(self, args: Args) -> str:
        policy = self._bq_policy(args, "remove-iam-policy-binding")
        return _emit(_remove_member(policy, args.need("role"), args.need("member")), "json")

    def bq_policy(self, args: Args) -> str:
        return _emit(_policy(self._bq_policy(args, "get-iam-policy")), args.get("format") or "json")


GCLOUD: dict[tuple[str, ...], Callable[[Cloud, Args], str]] = {
    ("auth", "print-access-token"): Cloud.auth_token,
    ("services", "enable"): Cloud.services_enable,
    ("projects", "describe"): Cloud.projects_describe,
    ("projects", "add-iam-policy-binding"): Cloud.projects_binding,
    ("projects", "remove-iam-policy-binding"): Cloud.projects_remove_binding,
    ("projects", "get-iam-policy"): Cloud.projects_policy,
    ("iam", "roles", "describe"): Cloud.roles_describe,
    ("iam", "roles", "create"): Cloud.roles_create,
    ("iam", "roles", "update"): Cloud.roles_update,
    ("iam", "service-accounts", "add-iam-policy-binding"): Cloud.sa_binding,
    ("iam", "service-accounts", "remove-iam-policy-binding"): Cloud.sa_remove_binding,
    ("iam", "service-accounts", "get-iam-policy"): Cloud.sa_policy,
    ("secrets", "describe"): Cloud.secrets_describe,
    ("secrets", "create"): Cloud.secrets_create,
    ("secrets", "add-iam-policy-binding"): Cloud.secrets_binding,
    ("secrets", "remove-iam-policy-binding"): Cloud.secrets_remove_binding,
    ("secrets", "get-iam-policy"): Cloud.secrets_policy,
    ("secrets", "versions", "add"): Cloud.secret_versions_add,
    ("secrets", "versions", "describe"): Cloud.secret_versions_describe,
    ("firestore", "databases", "describe"): Cloud.firestore_describe,
    ("firestore", "databases", "create"): Cloud.firestore_create,
    ("firestore", "fields", "ttls", "update"): Cloud.ttls_update,
    ("firestore", "fields", "ttls", "list"): Cloud.ttls_list,
    ("iam", "service-accounts", "describe"): Cloud.sa_describe,
    ("iam", "service-accounts", "create"): Cloud.sa_create,
    ("pubsub", "topics", "describe"): Cloud.topics_describe,
    ("pubsub", "topics", "create"): Cloud.topics_create,
    ("pubsub", "topics", "add-iam-policy-binding"): Cloud.topics_binding,
    ("pubsub", "topics", "remove-iam-policy-binding"): Cloud.topics_remove_binding,
    ("pubsub", "topics", "get-iam-policy"): Cloud.topics_policy,
    ("pubsub", "topics", "list-subscriptions"): Cloud.topics_list_subscriptions,
    ("pubsub", "subscriptions", "describe"): Cloud.subscriptions_describe,
    ("pubsub", "subscriptions", "create"): Cloud.subscriptions_create,
    ("pubsub", "subscriptions", "update"): Cloud.subscriptions_update,
    ("pubsub", "subscriptions", "add-iam-policy-binding"): Cloud.subscriptions_binding,
    ("pubsub", "subscriptions", "get-iam-policy"): Cloud.subscriptions_policy,
    ("pubsub", "subscriptions", "remove-iam-policy-binding"): Cloud.subscriptions_remove_binding,
    ("functions", "deploy"): Cloud.functions_deploy,
    ("functions", "describe"): Cloud.functions_describe,
    ("functions", "add-invoker-policy-binding"): Cloud.functions_invoker,
    ("eventarc", "triggers", "describe"): Cloud.trigger_describe,
    ("run", "services", "get-iam-policy"): Cloud.run_policy,
    ("run", "services", "remove-iam-policy-binding"): Cloud.run_remove_binding,
    ("scheduler", "jobs", "describe"): Cloud.job_describe,
    ("scheduler", "jobs", "create", "pubsub"): Cloud.job_create,
    ("scheduler", "jobs", "update", "pubsub"): Cloud.job_update,
}


NO_ACCOUNT = (
    "ERROR: (gcloud.auth.print-access-token) You do not currently have an active account selected.\n"
    "Please run:\n\n  $ gcloud auth login\n\nto obtain new credentials."
)
EXPIRED = (
    "ERROR: (gcloud.auth.print-access-token) There was a problem refreshing your current auth tokens: "
    "Reauthentication failed. cannot prompt during non-interactive execution."
)


def _dispatch(program: str, argv: list[str], cloud: Cloud) -> str:
    auth = cloud.s.get("auth", "ok")
    if auth != "ok":  # every command needs the account, as the real CLI does
        raise Fail(1, NO_ACCOUNT if auth == "none" else EXPIRED)
    if program == "bq":
        location = None
        while argv and argv[0].startswith("--"):  # global flags
            name, _, value = argv.pop(0)[2:].partition("=")
            if name != "location":
                raise Fail(2, f"FATAL Flags parsing error: Unknown command line flag '{name}'")
            location = value
        if not argv:
            raise Fail(2, "bq: no command")
        command, args = argv[0], Args(argv[1:])
        if command == "mk":
            out = cloud.bq_mk(args, location)
        elif command in ("show", "update", "add-iam-policy-binding", "remove-iam-policy-binding", "get-iam-policy"):
            out = {
                "show": cloud.bq_show,
                "update": cloud.bq_update,
                "add-iam-policy-binding": cloud.bq_binding,
                "remove-iam-policy-binding": cloud.bq_remove_binding,
                "get-iam-policy": cloud.bq_policy,
            }[command](args)
        else:
            raise Fail(2, f"bq: command {command!r} is not simulated")
        args.done(f"bq {command}")
        return out
    words = [t for t in argv if not t.startswith("--")]
    for size in (4, 3, 2):
        handler = GCLOUD.get(tuple(words[:size]))
        if handler is not None:
            rest = list(argv)
            for word in words[:size]:
                rest.remove(word)
            args = Args(rest)
            out = handler(cloud, args)
            args.done("gcloud." + ".".join(words[:size]))
            return out
    raise Fail(2, f"ERROR: (gcloud) fake gcloud does not simulate: {' '.join(argv)}")


def main(argv: list[str]) -> int:
    code, out, err = run_command(argv, os.environ[STATE_ENV], os.environ[LOG_ENV], os.getcwd())
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


def run_command(argv: list[str], state_path: str, log_path: str, cwd: str) -> tuple[int, str, str]:
    """One command against the state file: (exit code, stdout, stderr); logged like a real call."""
    program, args = argv[0], argv[1:]
    with open(state_path, "r+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        state: State = marshal.load(handle)
        code, out, err = 0, "", ""
        fault = next((f for f in state.get("faults", []) if [program, *args][: len(f["prefix"])] == f["prefix"]), None)
        if fault is not None:
            code, err = int(fault["returncode"]), str(fault["stderr"])
        else:
            try:
                out = _dispatch(program, list(args), Cloud(state, cwd))
            except Fail as exc:
                code, err = exc.returncode, exc.message + "\n"
            if code == 0:
                handle.seek(0)
                handle.truncate()
                marshal.dump(state, handle)
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(dumps({"argv": [program, *args], "returncode": code}) + "\n")
    return code, out, err


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
