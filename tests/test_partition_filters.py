"""Every SQL statement names the partitions it reads (issue 25, B).

Every table the package queries is partitioned (``deploy/bigquery/*.json``: the package's own
tables; ``deploy/bigquery/upstream/*.json``: the replaced system's, several with
``require_partition_filter``). A statement that reads one (SELECT, UPDATE, DELETE, a MERGE's
target) must have a filter BigQuery can prune on: a top-level conjunct of its WHERE (a MERGE's ON)
comparing the table's partition column with a parameter or a literal (``=``, ``<``, ``>=``,
``BETWEEN``, ``IN``). ``@game_date IS NULL OR game_date = @game_date`` is not one (an OR), nor
``T.game_date = S.game_date`` (a column). An INSERT only writes.

The statements are found in the source (``ast``) of ``shared/``, ``phasectl/`` and ``functions/``:
every string literal or f-string that names a table after FROM, JOIN, UPDATE, MERGE or INTO, as
``{expression}`` or as a backquoted reference. Which table an expression is comes from the
definition key it names (``queue_table``, ``schedule_table``, ...) directly or through the
assignment of the name it uses; a gate's, source's or sensor condition's ``<owner>.table`` must be
filtered on ``<owner>.date_column``, and the packaged definition's date columns must be those
tables' partition columns. A table expression this test cannot tell fails the test: say here what
it is.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("shared", "phasectl", "functions")
SCHEMAS = REPO / "deploy" / "bigquery"

# definition keys naming the package's own tables and the schedule, and their schema files
KEYED_TABLES = {
    "queue_table": "failed_processor_queue",
    "phase_execution_log_table": "phase_execution_log",
    "conflict_log_table": "streaming_conflict_log",
    "unavailable_table": "game_unavailable",
    "schedule_table": "upstream/nbac_schedule",
}
TABLE_REF = re.compile(r"\b(FROM|JOIN|UPDATE|MERGE(?:\s+INTO)?|DELETE\s+FROM|INSERT\s+INTO)\s+(`[^`]*`|\{\d+\})")
OWNED_TABLE = re.compile(r"^(?:self\._table\(|table\()?([\w.]+)\.table\)?$")  # t.table, gate.table.table
ENDS = re.compile(r"\b(GROUP\s+BY|ORDER\s+BY|LIMIT|UNION|HAVING|QUALIFY|WINDOW|WHEN)\b", re.IGNORECASE)
VALUE = r"(@\w+|'[^']*'|DATE\s*'[^']*'|DATE\s*\(\s*@\w+\s*\)|CURRENT_DATE\(\))"
PRUNABLE = re.compile(
    rf"^(?:\w+\.)?(?P<col>\w+|\{{\d+\}})\s*(?:(?:=|<=|>=|<|>)\s*{VALUE}|BETWEEN\s+{VALUE}\s+AND\s+{VALUE}"
    rf"|IN\s*\(\s*{VALUE}(?:\s*,\s*{VALUE})*\s*\))$",
    re.IGNORECASE | re.DOTALL,
)


def partition_columns() -> dict[str, str]:
    """Schema file stem (``upstream/<name>`` for the replaced system's) → partition column."""
    out = {}
    for path in sorted(SCHEMAS.rglob("*.json")):
        raw = json.loads(path.read_text())
        part = raw.get("time_partitioning")
        if part:
            out[str(path.relative_to(SCHEMAS).with_suffix(""))] = part["field"]
    return out


@dataclass(frozen=True)
class Statement:
    where: str  # path:line
    text: str  # the SQL with each interpolation as {n}
    values: tuple[str, ...]  # the source of interpolation n
    table_exprs: tuple[str, ...]  # per interpolation: what its table expression resolves to


class _Assignments:
    """What a name or ``self.<attr>`` is assigned, in the function, its class, then the module."""

    def __init__(self, tree: ast.Module) -> None:
        self.parents: dict[ast.AST, ast.AST] = {}
        for parent in ast.walk(tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent

    def value_of(self, expr: str, node: ast.AST) -> ast.expr | None:
        while node in self.parents:
            node = self.parents[node]
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module):
                continue
            found = [
                a.value
                for a in ast.walk(node)
                if isinstance(a, ast.Assign | ast.AnnAssign)
                and a.value is not None
                and any(ast.unparse(t) == expr for t in (a.targets if isinstance(a, ast.Assign) else [a.target]))
            ]
            if found:
                return found[-1]
        return None


def _is_string(node: ast.AST | None) -> bool:
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def _render(node: ast.JoinedStr | ast.Constant, names: _Assignments) -> tuple[str, list[str], list[str]]:
    """The statement's text with interpolation n as ``{n}`` (a constant's text inlined), each
    interpolation's source, and what each resolves to (its assignment's source, or ``<subquery>``)."""
    if isinstance(node, ast.Constant):
        return str(node.value), [], []
    text, values, resolved = "", list[str](), list[str]()
    for part in node.values:
        if not isinstance(part, ast.FormattedValue):
            assert isinstance(part, ast.Constant)
            text += str(part.value)
            continue
        source = ast.unparse(part.value)
        assigned = names.value_of(source, node) if re.fullmatch(r"[\w.]+", source) else None
        if isinstance(assigned, ast.Constant) and isinstance(assigned.value, str):
            text += assigned.value  # a constant piece of SQL (a column list, a key's conditions)
            continue
        text += "{" + str(len(values)) + "}"
        values.append(source)
        if _is_string(assigned) and "SELECT" in ast.unparse(assigned or part.value):
            resolved.append("<subquery>")
        else:
            resolved.append(ast.unparse(assigned) if assigned is not None else source)
    return text, values, resolved


def find_statements(source: str, path: str) -> list[Statement]:
    """Every string literal or f-string of ``source`` naming a table after FROM/JOIN/UPDATE/MERGE/INTO."""
    tree = ast.parse(source)
    names = _Assignments(tree)
    inner = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    out = []
    for node in ast.walk(tree):
        if not _is_string(node) or id(node) in inner:
            continue
        assert isinstance(node, ast.JoinedStr | ast.Constant)
        text, values, resolved = _render(node, names)
        if TABLE_REF.search(text):
            out.append(Statement(f"{path}:{node.lineno}", text, tuple(values), tuple(resolved)))
    return out


def _depths(text: str) -> list[int]:
    """The parenthesis depth at each character (an opening parenthesis belongs to its inside)."""
    depth, out = 0, []
    for ch in text:
        depth += ch == "("
        out.append(depth)
        depth -= ch == ")"
    return out


def _top_level_split(clause: str, word: str) -> list[str]:
    parts, depth, last = [], 0, 0
    for match in re.finditer(rf"\(|\)|\b{word}\b", clause, re.IGNORECASE):
        token = match.group(0)
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif depth == 0:
            parts.append(clause[last : match.start()])
            last = match.end()
    parts.append(clause[last:])
    return [p.strip() for p in parts]


def _unwrap(c: str) -> str:
    """``(a AND b)`` → ``a AND b``, as often as the whole conjunct is one parenthesised group."""
    while c.startswith("(") and c.endswith(")") and all(d >= 1 for d in _depths(c)[:-1]):
        c = c[1:-1].strip()
    return c


def _conjuncts(clause: str) -> list[str]:
    out: list[str] = []
    for piece in _top_level_split(clause, "AND"):  # BETWEEN a AND b: one conjunct
        if out and re.search(r"\bBETWEEN\s+\S+$", out[-1], re.IGNORECASE):
            out[-1] = f"{out[-1]} AND {piece}"
        else:
            out.append(piece)
    return [_unwrap(c) for c in out]


def _filter_clause(text: str, start: int, merge: bool) -> str:
    """The WHERE (a MERGE's ON) of the table reference ending at ``start``: at its parenthesis depth,
    up to the next clause at that depth or the end of its group."""
    depths = _depths(text)
    base = depths[start] if start < len(text) else depths[-1]
    end = next((i for i in range(start, len(text)) if text[i] == ")" and depths[i] == base), len(text))
    keyword = re.compile(r"\bON\b" if merge else r"\bWHERE\b")
    at_base = [m for m in keyword.finditer(text, start, end) if depths[m.start()] == base]
    if not at_base:
        return ""
    stop = next((m.start() for m in ENDS.finditer(text, at_base[0].end(), end) if depths[m.start()] == base), end)
    return text[at_base[0].end() : stop]


def _table_of(expr: str, columns: dict[str, str]) -> tuple[str, set[str]] | None:
    """(table, the accepted partition filter columns) of a table expression; ``None``: cannot tell."""
    for key, schema in KEYED_TABLES.items():
        if re.search(rf"\b{key}\b", expr):
            accepted = {columns[schema]}
            if key == "schedule_table":  # {g.schedule_date_column}: checked against the schema below
                accepted.add("schedule_date_column")
            return schema, accepted
    owned = OWNED_TABLE.match(expr.strip())
    if owned:
        return f"definition:{owned.group(1)}", {f"{owned.group(1)}.date_column"}
    return None


def _prunable(conjunct: str, st: Statement, accepted: set[str]) -> bool:
    if _top_level_split(conjunct, "OR")[1:]:
        return False  # an OR: not a filter BigQuery prunes on
    hit = PRUNABLE.match(conjunct)
    if hit is None:
        return False
    column = hit.group("col")
    if column.startswith("{"):
        column = st.values[int(column[1:-1])]
    return any(column == a or column.endswith(f".{a}") for a in accepted)


def violations(statements: list[Statement], columns: dict[str, str]) -> list[str]:
    """One line per statement that reads a partitioned table without a prunable filter on it."""
    out = []
    for st in statements:
        text = re.sub(r"'[^']*'", "''", st.text)  # string literals hold no SQL structure
        for match in TABLE_REF.finditer(text):
            verb, ref = re.sub(r"\s+", " ", match.group(1).upper()), match.group(2)
            if verb.startswith("INSERT"):
                continue  # writes only
            exprs = [st.table_exprs[int(n)] for n in re.findall(r"\{(\d+)\}", ref)]
            if exprs == ["<subquery>"]:
                continue  # checked as its own statement
            table = _table_of(" ".join(exprs), columns)
            if table is None:
                out.append(f"{st.where}: cannot tell which table {ref} is ({st.text[:80]!r}): name it in this test")
                continue
            name, accepted = table
            clause = _filter_clause(text, match.end(), merge=verb.startswith("MERGE"))
            if not any(_prunable(c, st, accepted) for c in _conjuncts(clause)):
                out.append(f"{st.where}: {verb} {name} has no prunable filter on {sorted(accepted)}: {st.text!r}")
    return out


def project_statements() -> list[Statement]:
    out = []
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            out += find_statements(path.read_text(), str(path.relative_to(REPO)))
    return out


# ---------------------------------------------------------------------------------------------
def test_every_statement_on_a_partitioned_table_names_its_partition() -> None:
    statements = project_statements()
    assert len(statements) >= 20, [s.where for s in statements]  # the finder finds the project's SQL
    assert violations(statements, partition_columns()) == []


def test_the_finder_finds_known_statements() -> None:
    """The check can fail: it sees the queue's scans and the monitor's query, and flags what they were."""
    statements = project_statements()
    where = {s.where.split(":")[0] for s in statements}
    for path in (
        "shared/retry/queue.py",
        "shared/monitor/retry_queue.py",
        "shared/orchestration/gate_queries.py",
        "shared/orchestration/timed.py",
        "shared/monitor/schedule_read.py",
        "phasectl/commands/reconcile.py",
        "phasectl/commands/games.py",
    ):
        assert path in where, path
    due = [s for s in statements if s.where.startswith("shared/retry/queue.py") and "next_retry_at <= @now" in s.text]
    assert len(due) == 1, due
    assert due[0].values == ("self.table",) and "queue_table" in due[0].table_exprs[0], due

    columns = partition_columns()
    bad = """
class Queue:
    def __init__(self, project, dataset, policy):
        self.table = f"`{project}.{dataset}.{policy.queue_table}`"

    def rows(self):
        return self._select(
            f"SELECT id FROM {self.table} WHERE (@game_date IS NULL OR game_date = @game_date) AND status = 'x'", []
        )

    def claim(self):
        return self._dml(f"UPDATE {self.table} SET status = 'retrying' WHERE id = @id", [])

    def merge(self):
        return self._dml(
            f"MERGE {self.table} T USING (SELECT @game_date AS game_date) S ON T.game_date = S.game_date "
            "WHEN NOT MATCHED THEN INSERT (id) VALUES (@id)", []
        )

    def scan(self):
        return self._select(f"SELECT id FROM {self.table} WHERE status = 'pending'", [])

    def either(self):
        return self._select(f"SELECT id FROM {self.table} WHERE game_date = @d OR status = 'pending'", [])

    def unknown(self, thing):
        return self._select(f"SELECT id FROM {thing} WHERE game_date = @d", [])
"""
    found = violations(find_statements(bad, "bad.py"), columns)
    assert [line.split(":")[1] for line in found] == ["8", "12", "16", "21", "24", "27"], found
    assert "cannot tell which table" in found[-1]

    good = """
def log(project, s, day):
    sql = (
        f"SELECT status FROM `{project}.{s.dataset}.{s.phase_execution_log_table}` WHERE game_date = @game_date "
        "ORDER BY execution_timestamp"
    )

def queue(self):
    self.table = f"`{self.project}.{self.dataset}.{self.policy.queue_table}`"
    a = f"UPDATE {self.table} SET n = 1 WHERE game_date = @game_date AND id = @id"
    b = f"SELECT id FROM {self.table} WHERE game_date BETWEEN @first AND @last AND (@p IS NULL OR p = @p)"
    c = (
        f"MERGE {self.table} T USING (SELECT 1 AS x) S ON T.game_date = @game_date AND T.x = S.x "
        "WHEN NOT MATCHED THEN INSERT (x) VALUES (1)"
    )
    d = f"SELECT id FROM {self.table} WHERE game_date >= @since AND (status = 'a' OR status = 'b')"

def gate(self, t):
    return f"(SELECT COUNT(*) AS n FROM {self._table(t.table)} WHERE {t.date_column} = @game_date)"
"""
    assert violations(find_statements(good, "good.py"), columns) == []
    wrong_owner = (
        "def gate(self, t, u):\n    return f'SELECT 1 FROM {self._table(t.table)} WHERE {u.date_column} = @d'\n"
    )
    assert len(violations(find_statements(wrong_owner, "w.py"), columns)) == 1


def test_the_definitions_date_columns_are_the_partition_columns() -> None:
    """A gate's, source's or sensor's ``date_column`` (and the schedule's) is its table's partition column."""
    from shared.pipeline.definition import DEFAULT_DEFINITION_PATH, parse_definition

    definition = parse_definition(tomllib.loads(DEFAULT_DEFINITION_PATH.read_text()))
    columns = partition_columns()
    upstream = {k.split("/", 1)[1]: v for k, v in columns.items() if k.startswith("upstream/")}
    refs: list[tuple[str, str]] = [(definition.games.schedule_table, definition.games.schedule_date_column)]
    refs += [(s.table, s.date_column) for s in definition.games.boxscore_sources]
    for gate in definition.gates.values():
        refs += [(t.table, t.date_column) for t in gate.read_tables()]
    for sensor in definition.sensors:  # the timed triggers with conditions ([[jobs]] read no table)
        refs += [(c.table.table, c.table.date_column) for c in sensor.conditions if c.table is not None]
    assert len(refs) > 10
    assert set(definition.condition_tables()) <= {table for table, _ in refs}
    for table, column in refs:
        name = table.split(".")[1]
        assert name in upstream, f"{table}: no schema under deploy/bigquery/upstream"
        assert column == upstream[name], f"{table} is partitioned on {upstream[name]}, the definition says {column}"


def test_the_queue_window_is_the_queue_tables_partition_expiry() -> None:
    """``game_date >= @since`` leaves out no row the table still keeps (policy.QUEUE_WINDOW_DAYS)."""
    from shared.retry.policy import QUEUE_WINDOW_DAYS

    raw = json.loads((SCHEMAS / "failed_processor_queue.json").read_text())
    assert QUEUE_WINDOW_DAYS == raw["time_partitioning"]["expiration_days"]


@pytest.mark.parametrize("schema", sorted(KEYED_TABLES.values()))
def test_every_named_table_is_partitioned(schema: str) -> None:
    assert schema in partition_columns()
