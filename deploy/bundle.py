"""Per-function bundles from the import closure: each function ships only what it imports (lesson L16).

For each ``functions/<name>/main.py`` the build walks the imports by AST (never by
importing the code), follows the lazy ``_LAZY`` maps of ``shared`` packages to the one
module that defines a name, collects the data files modules declare in a literal
``BUNDLE_DATA`` tuple, maps third-party imports to installed distributions pinned to the
tested versions, and writes ``build/<name>/`` (code, data, ``requirements.txt``,
``manifest.json``) plus a byte-reproducible ``build/<name>.zip``.

A build fails, with the import chain that explains it, on: a first-party module that does
not exist, a lazy-map entry pointing nowhere, a third-party import no installed
distribution provides, and a function importing ``tests``, ``deploy`` or another function.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata as md
import json
import shutil
import sys
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = ("shared",)
# Top-level packages no function may import: the tests, the build and local tooling, other functions,
# and the operator CLI (a composition root of its own that no function ships).
FORBIDDEN = ("tests", "deploy", "functions", "phasectl")
# Import names whose distribution the installed metadata cannot tell (namespace roots and
# modules shipped without RECORD entries); extend when a build says "no distribution".
DISTRIBUTION_OVERRIDES: dict[str, str] = {
    "google.protobuf": "protobuf",
    "google.rpc": "googleapis-common-protos",
    "google.type": "googleapis-common-protos",
    "grpc": "grpcio",
    "yaml": "PyYAML",
}
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class BuildError(Exception):
    """A bundle cannot be built; the message carries the import chain."""


@dataclass
class Origin:
    """Why something is in the bundle: the chain of modules that pulled it in."""

    chain: tuple[str, ...]

    def render(self) -> str:
        return " → ".join(self.chain)


@dataclass
class Closure:
    function: str
    main: Path
    modules: dict[str, tuple[Path, Origin]] = field(default_factory=dict)  # first-party module → file
    data_files: dict[str, tuple[Path, Origin]] = field(default_factory=dict)  # bundle path → source
    distributions: dict[str, tuple[str, Origin, set[str]]] = field(default_factory=dict)  # dist → version


# --------------------------------------------------------------------------------------
# Third-party: import name → distribution
# --------------------------------------------------------------------------------------
@cache
def _module_index() -> dict[str, str]:
    """Every importable module name provided by an installed distribution → its name."""
    index: dict[str, str] = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        for file in dist.files or ():
            parts = file.parts
            if not parts or parts[0].endswith((".dist-info", ".egg-info", ".data")) or parts[0] in ("..", "bin"):
                continue
            if file.suffix not in (".py", ".so", ".pyd") and not file.name.endswith(".abi3.so"):
                continue
            mod_parts = list(parts)
            last = mod_parts[-1].split(".")[0]
            mod_parts[-1] = last
            if last == "__init__":
                mod_parts = mod_parts[:-1]
            if mod_parts and all(p.isidentifier() for p in mod_parts):
                index.setdefault(".".join(mod_parts), name)
    return index


def distribution_for(module: str) -> str | None:
    """The installed distribution providing ``module`` (longest known prefix), or ``None``."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in DISTRIBUTION_OVERRIDES:
            return DISTRIBUTION_OVERRIDES[prefix]
        found = _module_index().get(prefix)
        if found:
            return found
    return None


def _is_stdlib(module: str) -> bool:
    return module.split(".")[0] in sys.stdlib_module_names or module.split(".")[0] == "__future__"


# --------------------------------------------------------------------------------------
# AST walk
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImportRef:
    module: str  # absolute dotted name
    names: tuple[str, ...] = ()  # for `from module import a, b`
    optional: bool = False  # inside try/except ImportError
    attr_of_package: bool = False  # `pkg.name` attribute access on an imported first-party package
    line: int = 0


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _catches_import_error(handlers: list[ast.ExceptHandler]) -> bool:
    for handler in handlers:
        names = []
        if isinstance(handler.type, ast.Name):
            names = [handler.type.id]
        elif isinstance(handler.type, ast.Attribute):
            names = [handler.type.attr]
        elif isinstance(handler.type, ast.Tuple):
            names = [e.id for e in handler.type.elts if isinstance(e, ast.Name)]
        if handler.type is None or {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"} & set(names):
            return True  # a bare except / except Exception catches ImportError too
    return False


def _resolve_relative(module: str | None, level: int, current: str, is_package: bool) -> str:
    if level == 0:
        return module or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([module] if module else [])])


class _Walker(ast.NodeVisitor):
    def __init__(self, current: str, is_package: bool) -> None:
        self.current = current
        self.is_package = is_package
        self.refs: list[ImportRef] = []
        self.optional_depth = 0
        self.package_aliases: dict[str, str] = {}

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Try(self, node: ast.Try | ast.TryStar) -> None:
        optional = _catches_import_error(node.handlers)
        self.optional_depth += optional
        for child in node.body:
            self.visit(child)
        self.optional_depth -= optional
        rest: list[ast.AST] = [*node.handlers, *node.orelse, *node.finalbody]
        for other in rest:
            self.visit(other)

    visit_TryStar = visit_Try

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.refs.append(ImportRef(alias.name, optional=self.optional_depth > 0, line=node.lineno))
            if alias.name.split(".")[0] in FIRST_PARTY:
                self.package_aliases[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = _resolve_relative(node.module, node.level, self.current, self.is_package)
        names = tuple(a.name for a in node.names if a.name != "*")
        self.refs.append(ImportRef(module, names, optional=self.optional_depth > 0, line=node.lineno))
        if module.split(".")[0] in FIRST_PARTY:
            # `from shared import pipeline` then `pipeline.load_definition`: attribute access on
            # the imported name may reach a lazy name of a sub-package
            for alias in node.names:
                if alias.name != "*":
                    self.package_aliases[alias.asname or alias.name] = f"{module}.{alias.name}"

    def _package_arg(self, node: ast.Call) -> str | None:
        arg = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "package"), None)
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
        if isinstance(arg, ast.Name) and arg.id == "__name__":
            return self.current
        if isinstance(arg, ast.Name) and arg.id == "__package__":
            return self.current if self.is_package else self.current.rpartition(".")[0]
        return None

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        fname = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if fname in ("import_module", "__import__") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                target: str | None = first.value
                if first.value.startswith("."):  # relative: needs the package argument
                    package = self._package_arg(node) if fname == "import_module" else None
                    level = len(first.value) - len(first.value.lstrip("."))
                    target = (
                        _resolve_relative(first.value.lstrip(".") or None, level, package, True) if package else None
                    )
                if target:
                    self.refs.append(ImportRef(target, optional=self.optional_depth > 0, line=node.lineno))
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        # `shared.pipeline.load_definition` → ("shared", pipeline), ("shared.pipeline", load_definition):
        # every prefix may be a package whose lazy map defines the next name
        attrs: list[str] = []
        value: ast.expr = node
        while isinstance(value, ast.Attribute):
            attrs.insert(0, value.attr)
            value = value.value
        if isinstance(value, ast.Name) and value.id in self.package_aliases:
            base = self.package_aliases[value.id]
            for attr in attrs:
                self.refs.append(ImportRef(base, (attr,), attr_of_package=True, line=node.lineno))
                base = f"{base}.{attr}"
            return  # the inner attributes were just handled
        self.generic_visit(node)


def _parse(path: Path) -> ast.Module:
    stat = path.stat()  # keyed on size and mtime: an edited file is parsed again
    return _parse_cached(path, stat.st_mtime_ns, stat.st_size)


@cache
def _parse_cached(path: Path, mtime_ns: int, size: int) -> ast.Module:
    del mtime_ns, size
    return ast.parse(path.read_text(), filename=str(path))


def _literal_assignment(tree: ast.Module, name: str) -> object | None:
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for target in targets:
            if isinstance(target, ast.Name) and target.id == name and value is not None:
                try:
                    literal: object = ast.literal_eval(value)
                except ValueError as exc:
                    raise BuildError(f"{name} must be a literal (found non-literal value)") from exc
                return literal
    return None


def _top_level_names(tree: ast.Module) -> set[str]:
    return _bound_names(tree.body)


def _bound_names(body: list[ast.stmt]) -> set[str]:
    """Names a module body binds, including inside top-level ``if``/``try``/``with`` blocks."""
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.If):
            names |= _bound_names(node.body) | _bound_names(node.orelse)
        elif isinstance(node, ast.Try | ast.TryStar):
            names |= _bound_names(node.body) | _bound_names(node.orelse) | _bound_names(node.finalbody)
            for handler in node.handlers:
                names |= _bound_names(handler.body)
        elif isinstance(node, ast.With):
            names |= _bound_names(node.body)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    names.add(t.id)
                elif isinstance(t, ast.Tuple):
                    names.update(e.id for e in t.elts if isinstance(e, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _has_module_getattr(tree: ast.Module) -> bool:
    """A PEP 562 ``def __getattr__`` (any name may exist) in a module without a lazy map."""
    return any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body)


# --------------------------------------------------------------------------------------
# Modules the definition selects (the gate backend ships only where a transition has gates)
# --------------------------------------------------------------------------------------
def definition_modules(function: str, modules: set[str]) -> list[tuple[str, str]]:
    """First-party modules a function needs because of what the definition says, not its imports.

    The transition composition root (``shared.orchestration.runtime``) imports the gate backend
    by name, only when a transition has gates (``Transition.has_gates``): a transition function
    ships it when its own transition lists gates; any other function that builds transitions (the
    monitor, which re-evaluates every one) when any transition does. So a gateless transition
    ships neither the backend nor google-cloud-bigquery. The module names are the runtime's literal
    ``GATE_BACKEND_MODULES``, read from its source (the build does not import the runtime).
    Returns ``(module, reason)`` pairs; the reason is the manifest's chain.
    """
    runtime = "shared.orchestration.runtime"
    if runtime not in modules:
        return []
    from shared.pipeline.definition import load_definition

    definition = load_definition()
    names = {t.name for t in definition.transitions}
    mine = [t for t in definition.transitions if t.name == function] if function in names else definition.transitions
    gated = [t.name for t in mine if t.has_gates]
    if not gated:
        return []
    backend = _literal_assignment(_parse(REPO_ROOT / "shared" / "orchestration" / "runtime.py"), "GATE_BACKEND_MODULES")
    if not isinstance(backend, tuple) or not backend or not all(isinstance(m, str) for m in backend):
        raise BuildError(f"{runtime}: GATE_BACKEND_MODULES must be a non-empty tuple of module names")
    return [(module, f"definition: gates of {', '.join(gated)}") for module in backend]


# --------------------------------------------------------------------------------------
# Closure
# --------------------------------------------------------------------------------------
class Analyzer:
    """Computes one function's closure. ``root`` holds ``shared/``; ``functions_dir`` the functions."""

    def __init__(self, root: Path = REPO_ROOT, functions_dir: Path | None = None) -> None:
        self.root = root
        self.functions_dir = functions_dir or root / "functions"

    def module_file(self, module: str, local_dir: Path | None = None) -> tuple[Path, bool] | None:
        """(file, is_package) of a first-party or function-local module, or ``None``."""
        if not module or not all(part.isidentifier() for part in module.split(".")):
            return None
        base = local_dir if local_dir is not None else self.root
        rel = Path(*module.split("."))
        if (base / rel / "__init__.py").is_file():
            return base / rel / "__init__.py", True
        if (base / rel).with_suffix(".py").is_file():
            return (base / rel).with_suffix(".py"), False
        return None

    def lazy_map(self, package: str) -> dict[str, str] | None:
        found = self.module_file(package)
        if found is None or not found[1]:
            return None
        value = _literal_assignment(_parse(found[0]), "_LAZY")
        if value is None:
            return None
        if not isinstance(value, dict):
            raise BuildError(f"{package}: _LAZY must be a dict literal")
        return {str(k): str(v) for k, v in value.items()}

    def lazy_target(self, package: str, entry: str) -> str:
        """The absolute module a lazy-map entry (``".clock"``, ``"shared.clock"``) names."""
        stripped = entry.lstrip(".")
        return _resolve_relative(stripped or None, len(entry) - len(stripped), package, True)

    def analyze(self, function: str) -> Closure:
        main = self.functions_dir / function / "main.py"
        if not main.is_file():
            raise BuildError(f"function {function!r}: {main} does not exist")
        closure = Closure(function, main)
        local_dir = main.parent
        queue: list[tuple[str, Path, bool, Origin, bool]] = [("main", main, False, Origin(("main",)), True)]
        seen: set[str] = set()
        self._drain(closure, queue, seen, local_dir)
        for module, reason in definition_modules(function, set(closure.modules)):
            found = self.module_file(module)
            if found is None:
                raise BuildError(f"{reason}: module {module} does not exist")
            queue.append((module, found[0], found[1], Origin((reason, module)), False))
        self._drain(closure, queue, seen, local_dir)
        return closure

    def _drain(
        self,
        closure: Closure,
        queue: list[tuple[str, Path, bool, Origin, bool]],
        seen: set[str],
        local_dir: Path,
    ) -> None:
        while queue:
            module, path, is_package, origin, is_local = queue.pop(0)
            if module in seen:
                continue
            seen.add(module)
            if module != "main":
                closure.modules[module] = (path, origin)
            self._parents(module, origin, queue, local_dir if is_local else None)
            if is_package and not is_local:
                self._check_lazy_map(module, origin)
            self._data_files(module, path, origin, closure, local_dir if is_local else self.root)
            walker = _Walker(module, is_package)
            walker.visit(_parse(path))
            for ref in walker.refs:
                for target, chain in self._targets(ref, origin, local_dir):
                    self._enqueue(target, chain, ref, closure, queue, local_dir)

    def _check_lazy_map(self, package: str, origin: Origin) -> None:
        """Every entry of an included package's lazy map must name a module (``SHARED_EAGER`` loads them all)."""
        for name, entry in sorted((self.lazy_map(package) or {}).items()):
            target = self.lazy_target(package, entry)
            if self.module_file(target) is None:
                raise BuildError(
                    f"{origin.render()}: lazy map of {package} sends {name!r} to {entry!r} ({target}), "
                    "which does not exist"
                )

    def _parents(
        self,
        module: str,
        origin: Origin,
        queue: list[tuple[str, Path, bool, Origin, bool]],
        local_dir: Path | None = None,
    ) -> None:
        parts = module.split(".")
        for n in range(1, len(parts)):
            parent = ".".join(parts[:n])
            found = self.module_file(parent, local_dir)
            if found is not None:
                chain = Origin((*origin.chain, f"(package of {module})"))
                queue.append((parent, found[0], True, chain, local_dir is not None))

    def _data_files(self, module: str, path: Path, origin: Origin, closure: Closure, base: Path) -> None:
        declared = _literal_assignment(_parse(path), "BUNDLE_DATA")
        if declared is None:
            return
        if not isinstance(declared, tuple | list):
            raise BuildError(f"{module}: BUNDLE_DATA must be a tuple of file names relative to the module")
        for name in declared:
            source = path.parent / str(name)
            if not source.is_file():
                raise BuildError(f"{origin.render()}: {module} declares data file {name!r} which does not exist")
            try:
                rel = source.resolve().relative_to(base.resolve())
            except ValueError as exc:
                raise BuildError(f"{origin.render()}: {module} declares data file {name!r} outside its tree") from exc
            closure.data_files[rel.as_posix()] = (source, Origin((*origin.chain, str(name))))

    def _targets(self, ref: ImportRef, origin: Origin, local_dir: Path) -> Iterator[tuple[str, Origin]]:
        """The modules an import reference needs (lazy names resolved to their defining module)."""
        chain = Origin((*origin.chain, ref.module))
        root = ref.module.split(".")[0]
        if ref.attr_of_package and self.module_file(ref.module) is None:
            return  # attribute of something that is not a module (a class, a function, a value)
        if root in FIRST_PARTY and ref.names:
            lazy = self.lazy_map(ref.module)
            for name in ref.names:
                if lazy is not None and name in lazy:
                    target = self.lazy_target(ref.module, lazy[name])
                    if self.module_file(target) is None:
                        raise BuildError(
                            f"{chain.render()}: lazy map of {ref.module} sends {name!r} to {lazy[name]!r} "
                            f"({target}), which does not exist"
                        )
                    yield target, Origin((*origin.chain, f"{ref.module}.{name} (lazy)", target))
                elif self.module_file(f"{ref.module}.{name}") is not None:
                    yield f"{ref.module}.{name}", Origin((*chain.chain, f"{ref.module}.{name}"))
                else:
                    found = self.module_file(ref.module)
                    if found is None:
                        yield ref.module, chain  # reported as missing below
                        continue
                    tree = _parse(found[0])
                    if name in _top_level_names(tree) or (lazy is None and _has_module_getattr(tree)):
                        continue
                    if ref.attr_of_package:
                        continue  # an attribute that is not a lazy name: a method, a submodule attr
                    if ref.optional:
                        continue  # `try: from shared import maybe  except ImportError: ...`
                    raise BuildError(f"{chain.render()}: {ref.module} has no name {name!r} (not in its lazy map)")
            if not ref.attr_of_package:
                yield ref.module, chain
            return
        if ref.names and root not in FIRST_PARTY and self.module_file(ref.module, local_dir) is None:
            # `from pkg import sub`: the submodule when a distribution provides it (namespace
            # packages such as google.cloud belong to no single distribution)
            subs = [f"{ref.module}.{n}" for n in ref.names if f"{ref.module}.{n}" in _module_index()]
            yield from ((sub, Origin((*origin.chain, sub))) for sub in subs)
            if subs and distribution_for(ref.module) is None:
                return
        yield ref.module, chain

    def _enqueue(
        self,
        target: str,
        origin: Origin,
        ref: ImportRef,
        closure: Closure,
        queue: list[tuple[str, Path, bool, Origin, bool]],
        local_dir: Path,
    ) -> None:
        root = target.split(".")[0]
        if not target or _is_stdlib(target):
            return
        if root in FORBIDDEN:
            raise BuildError(f"{origin.render()}: a function may not import {root}/ ({target})")
        if root in FIRST_PARTY:
            found = self.module_file(target)
            if found is None:
                if ref.optional:
                    return
                raise BuildError(f"{origin.render()}: module {target} does not exist")
            queue.append((target, found[0], found[1], origin, False))
            return
        local = self.module_file(target, local_dir)
        if local is not None:  # a helper module next to main.py
            queue.append((target, local[0], local[1], origin, True))
            return
        dist = distribution_for(target)
        if dist is None:
            if ref.optional:
                return
            raise BuildError(
                f"{origin.render()}: third-party import {target!r} maps to no installed distribution "
                "(install it, or add it to deploy.bundle.DISTRIBUTION_OVERRIDES)"
            )
        try:
            version = md.version(dist)
        except md.PackageNotFoundError as exc:
            if ref.optional:
                return
            raise BuildError(
                f"{origin.render()}: third-party import {target!r} maps to {dist!r}, which is not installed"
            ) from exc
        if dist not in closure.distributions:
            closure.distributions[dist] = (version, origin, {target})
        else:
            closure.distributions[dist][2].add(target)


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------
def requirements(closure: Closure) -> str:
    lines = [
        f"{name}=={version}"
        for name, (version, _, _) in sorted(closure.distributions.items(), key=lambda kv: kv[0].lower())
    ]
    return "\n".join(lines) + "\n"


def manifest(closure: Closure, root: Path = REPO_ROOT) -> dict[str, object]:
    return {
        "function": closure.function,
        "modules": {
            m: {"file": _bundle_path(p, closure, root), "chain": o.render()}
            for m, (p, o) in sorted(closure.modules.items())
        },
        "data_files": {k: o.render() for k, (_, o) in sorted(closure.data_files.items())},
        "requirements": {
            d: {"version": v, "imports": sorted(i), "chain": o.render()}
            for d, (v, o, i) in sorted(closure.distributions.items())
        },
    }


def _bundle_path(path: Path, closure: Closure, root: Path) -> str:
    try:
        return str(path.relative_to(closure.main.parent))
    except ValueError:
        return str(path.relative_to(root))


def _files(closure: Closure, root: Path) -> Iterable[tuple[str, Path]]:
    yield "main.py", closure.main
    for module, (path, _) in closure.modules.items():
        yield _bundle_path(path, closure, root), path
        del module
    for rel, (path, _) in closure.data_files.items():
        yield rel, path


def build_function(function: str, out_dir: Path, analyzer: Analyzer | None = None) -> Path:
    """Write ``out_dir/<function>/`` and ``out_dir/<function>.zip``; returns the zip path."""
    analyzer = analyzer or Analyzer()
    closure = analyzer.analyze(function)
    target = out_dir / function
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    entries: dict[str, bytes] = {}
    for rel, path in _files(closure, analyzer.root):
        entries[rel] = path.read_bytes()
    toml = "shared/pipeline/pipeline.toml"
    if toml in entries:  # validated here (a bad definition fails the build) and shipped precompiled
        from shared.pipeline.definition import COMPILED_SUFFIX, compiled_bytes

        entries[toml + COMPILED_SUFFIX] = compiled_bytes(analyzer.root / toml)
    entries["requirements.txt"] = requirements(closure).encode()
    entries["manifest.json"] = (json.dumps(manifest(closure, analyzer.root), indent=2, sort_keys=True) + "\n").encode()
    for rel, data in entries.items():
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    zip_path = out_dir / f"{function}.zip"
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for rel in sorted(entries):
            info = zipfile.ZipInfo(rel, date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[rel])
    return zip_path


def functions(functions_dir: Path | None = None) -> list[str]:
    base = functions_dir or REPO_ROOT / "functions"
    return sorted(p.name for p in base.iterdir() if (p / "main.py").is_file())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def explain(function: str, module: str | None = None, analyzer: Analyzer | None = None) -> str:
    closure = (analyzer or Analyzer()).analyze(function)
    rows: list[str] = []
    if module is None:
        rows += [f"{m}: {o.render()}" for m, (_, o) in sorted(closure.modules.items())]
        rows += [f"{f}: {o.render()}" for f, (_, o) in sorted(closure.data_files.items())]
        rows += [
            f"{d}=={v} ({', '.join(sorted(i))}): {o.render()}" for d, (v, o, i) in sorted(closure.distributions.items())
        ]
        return "\n".join(rows)
    if module in closure.modules:
        return f"{module}: {closure.modules[module][1].render()}"
    if module in closure.data_files:
        return f"{module}: {closure.data_files[module][1].render()}"
    for dist, (version, origin, imports) in closure.distributions.items():
        if module.lower() == dist.lower() or module in imports or any(i.startswith(module + ".") for i in imports):
            return f"{dist}=={version} (imported as {', '.join(sorted(imports))}): {origin.render()}"
    return f"{module} is not in the {function} bundle"
