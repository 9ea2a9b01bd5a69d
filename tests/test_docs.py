"""The documentation stays true: a short README, links that resolve, a runbook section per alert.

- README.md is at most 150 lines and keeps the two commands (``.ci/run`` runs the README's test command).
- Every relative link in README.md and docs/*.md points to an existing file, and a ``#fragment`` to an
  existing heading (GitHub's anchor rule) or ``<a id>`` of that file.
- docs/operations.md (the runbook) has a section, whose anchor is the name, for every monitor finding
  kind and every ``alert`` log label in the code. Both are found by scanning the source, so a new kind
  or label without a section fails here; a kind or label computed at run time must be expanded below.

The helpers (``anchors``, ``finding_kinds``, ``alert_labels``) are shared with the alert tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
RUNBOOK = DOCS / "operations.md"
SOURCE_DIRS = ("shared", "functions", "deploy", "phasectl")
MAX_README_LINES = 150

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_EXPLICIT_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


# -- Markdown: lines outside code, headings, GitHub anchors, links ---------------------------------
def prose_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text (code spans, links and emphasis unwrapped),
    lower-cased, punctuation but ``-`` and ``_`` dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # [text](url) → text
    text = text.replace("`", "")
    text = re.sub(r"(\*\*|\*|~~)", "", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every anchor of a Markdown file: its headings' slugs (duplicates get -1, -2, … as on GitHub)
    and explicit ``<a id=...>`` / ``<a name=...>``."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for _, line in prose_lines(path):
        out.update(_EXPLICIT_ANCHOR.findall(line))
        match = _HEADING.match(line)
        if match is None:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(out)


def links(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, target) of every Markdown link and image outside code."""
    for number, line in prose_lines(path):
        for match in _LINK.finditer(_INLINE_CODE.sub("``", line)):
            yield number, match.group(1)


def documents() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


# -- the source: finding kinds and alert labels ------------------------------------------------------
def _sources() -> Iterator[tuple[Path, str]]:
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path, path.read_text()


_FINDING_CALL = re.compile(r"\bFinding\(\s*(?:kind\s*=\s*)?([^,\s)]+)")
_ALERT_LABEL = re.compile(r"[\"']alert[\"']\s*:\s*(f?\"[^\"\n]*\"|f?'[^'\n]*'|[A-Za-z_][\w.]*)")
_STRING = re.compile(r"^(f?)([\"'])(.*)\2$")
# a quarantined message's kind: the ``kind`` default of ``Quarantine.put`` and each ``kind="..."`` passed
_QUARANTINE_DEFAULT = re.compile(r"def put(?:_event)?\([^)]*?kind:\s*str\s*=\s*\"(\w+)\"", re.DOTALL)
_QUARANTINE_KIND = re.compile(r"quarantine\.put(?:_event)?\([^)]*?kind\s*=\s*\"(\w+)\"", re.DOTALL)


def _sensor_overdue_findings() -> set[str]:
    from shared.pipeline.definition import load_definition

    return {s.overdue_finding for s in load_definition().sensors if s.overdue_after}


def _quarantine_kinds() -> set[str]:
    kinds: set[str] = set()
    for _, text in _sources():
        kinds.update(_QUARANTINE_DEFAULT.findall(text))
        kinds.update(_QUARANTINE_KIND.findall(text))
    return kinds


# Finding kinds and alert labels that are not a string literal in the code, and what they stand for.
# A new computed one fails ``finding_kinds``/``alert_labels`` until it is expanded here.
def _regrade_findings(attr: str) -> set[str]:
    from shared.pipeline.definition import load_definition

    return {getattr(s.regrade, attr) for s in load_definition().sensors if s.regrade}


DYNAMIC_FINDING_KINDS = {
    "sensor.overdue_finding": _sensor_overdue_findings,
    "r.finding": lambda: _regrade_findings("finding"),  # shared.monitor.grading_net
    "r.gap_finding": lambda: _regrade_findings("gap_finding"),
}
DYNAMIC_ALERT_LABELS = {
    "finding.kind": lambda: set(finding_kinds()),  # AlertManager: every finding is alerted under its kind
    "quarantine_{kind}": lambda: {f"quarantine_{kind}" for kind in _quarantine_kinds()},
}


@cache
def finding_kinds() -> frozenset[str]:
    """Every monitor finding kind: the literal first argument of each ``Finding(...)`` call in the
    source, plus the expansion of each computed one (``DYNAMIC_FINDING_KINDS``)."""
    kinds: set[str] = set()
    for path, text in _sources():
        for match in _FINDING_CALL.finditer(text):
            token = match.group(1)
            literal = _STRING.match(token)
            if literal and not literal.group(1):
                kinds.add(literal.group(3))
            elif token in DYNAMIC_FINDING_KINDS:
                kinds |= DYNAMIC_FINDING_KINDS[token]()
            else:
                raise AssertionError(
                    f"{path.relative_to(ROOT)}: Finding({token}, ...) has a computed kind; add what it can be to "
                    "DYNAMIC_FINDING_KINDS in tests/test_docs.py and a runbook section to docs/operations.md"
                )
    return frozenset(kinds)


@cache
def alert_labels() -> frozenset[str]:
    """Every ``"alert": ...`` log label in the source (literal, or expanded by ``DYNAMIC_ALERT_LABELS``)."""
    labels: set[str] = set()
    for path, text in _sources():
        for match in _ALERT_LABEL.finditer(text):
            token = match.group(1)
            literal = _STRING.match(token)
            if literal and not literal.group(1):
                labels.add(literal.group(3))
            elif literal and literal.group(3) in DYNAMIC_ALERT_LABELS:
                labels |= DYNAMIC_ALERT_LABELS[literal.group(3)]()
            elif token in DYNAMIC_ALERT_LABELS:
                labels |= DYNAMIC_ALERT_LABELS[token]()
            else:
                raise AssertionError(
                    f"{path.relative_to(ROOT)}: alert label {token} is computed; add what it can be to "
                    "DYNAMIC_ALERT_LABELS in tests/test_docs.py and a runbook section to docs/operations.md"
                )
    return frozenset(labels)


def runbook_section(anchor: str) -> str:
    """The text of the runbook section whose heading's anchor is ``anchor`` (up to the next heading)."""
    lines = list(prose_lines(RUNBOOK))
    body: list[str] = []
    inside = False
    for _, line in lines:
        match = _HEADING.match(line)
        if match is not None:
            if inside:
                break
            inside = github_slug(match.group(2)) == anchor
            continue
        if inside:
            body.append(line)
    return "\n".join(body)


# -- README ----------------------------------------------------------------------------------------
def test_readme_is_at_most_150_lines() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; move detail to docs/"


def test_readme_keeps_the_two_commands_ci_runs() -> None:
    """``.ci/run`` runs exactly the README's test command; the README shows both set-up commands."""
    text = README.read_text()
    assert re.search(r"^make demo\s+#", text, re.MULTILINE) and re.search(r"^make test\s+#", text, re.MULTILINE)
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "make test" in ci


def test_readme_links_every_document() -> None:
    targets = {target.split("#", 1)[0] for _, target in links(README)}
    for name in ("design.md", "operations.md", "deploy.md", "development.md"):
        assert f"docs/{name}" in targets, f"README.md does not link docs/{name}"


# -- links -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("document", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(document: Path) -> None:
    problems = []
    for number, target in links(document):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("//"):
            continue  # an absolute URL (https:, mailto:): not checked offline
        path_part, _, fragment = target.partition("#")
        resolved = (document.parent / path_part).resolve() if path_part else document
        where = f"{document.relative_to(ROOT)}:{number}: {target}"
        if not resolved.exists():
            problems.append(f"{where}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            problems.append(f"{where}: no heading with anchor #{fragment} in {resolved.relative_to(ROOT)}")
    assert not problems, "\n".join(problems)


def test_the_link_checker_sees_links_and_anchors() -> None:
    """The checker itself: GitHub's anchor rule on the headings used here, links found outside code only."""
    assert github_slug("Local cloud: `phasectl local up`") == "local-cloud-phasectl-local-up"
    assert github_slug("`phase_execution_log`: why an outbox") == "phase_execution_log-why-an-outbox"
    assert github_slug("The transition protocol (exactly one trigger per date and generation)") == (
        "the-transition-protocol-exactly-one-trigger-per-date-and-generation"
    )
    assert github_slug("retry_failed_permanent") == "retry_failed_permanent"
    assert "runbook" in anchors(RUNBOOK) and "stuck" in anchors(RUNBOOK)
    assert sum(1 for _ in links(README)) >= 5
    assert "published-success-completion-of-playergamesummaryprocessor" not in " ".join(anchors(DOCS / "design.md"))


# -- the runbook -----------------------------------------------------------------------------------
def test_the_scan_finds_the_known_kinds_and_labels() -> None:
    """Guards the scan itself (a regex that matched nothing would make the coverage test vacuous)."""
    kinds, labels = finding_kinds(), alert_labels()
    assert {"stuck", "blocked", "silent", "handoff", "gate_alert", "gate_error", "grading_overdue"} <= kinds
    assert {"check_error", "dead_letters", "retry_heartbeat_stale", "retry_dispatch_failing", "grid_gap"} <= kinds
    assert {"claim_fence_refused", "stale_event", "quarantine_malformed", "quarantine_stale"} <= labels
    assert {"transition_blocked", "http_delivery_rejected", "execution_log_rejected"} <= labels
    assert kinds <= labels  # every finding is alerted under its kind


def test_every_finding_kind_and_alert_label_has_a_runbook_section() -> None:
    sections = anchors(RUNBOOK)
    missing = sorted((finding_kinds() | alert_labels()) - sections)
    assert not missing, (
        "docs/operations.md has no section for: "
        + ", ".join(missing)
        + " (add a heading named exactly like it: what it means, what to check, which phasectl command fixes it)"
    )


def _names_or_none() -> list[str]:
    """For parametrisation: the names, or none when the scan fails (the coverage test reports why)."""
    try:
        return sorted(finding_kinds() | alert_labels())
    except AssertionError:
        return []


@pytest.mark.parametrize("name", _names_or_none())
def test_each_runbook_section_says_what_it_means_what_to_check_and_the_fix(name: str) -> None:
    body = runbook_section(name)
    for part in ("**Means**", "**Check**", "**Fix**"):
        assert part in body, f"docs/operations.md#{name}: no {part}"
    refers = re.findall(r"\]\(#([\w-]+)\)", body)
    assert "phasectl" in body or any("phasectl" in runbook_section(other) for other in refers), (
        f"docs/operations.md#{name}: names no phasectl command (nor links a section that does)"
    )


# -- lessons: every id the code cites is explained --------------------------------------------------
LESSONS = DOCS / "lessons.md"
_LESSON_ID = re.compile(r"\bL(\d{2})\b")
_LESSON_ROW = re.compile(r"^\| <a id=\"l(\d{2})\"></a>L\1 \|", re.MULTILINE)


def cited_lesson_ids() -> set[str]:
    """Every ``Lnn`` the code, the tests and the definition cite."""
    found: set[str] = set()
    for folder in (*SOURCE_DIRS, "tests"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".toml") and path.is_file():
                found |= {f"L{n}" for n in _LESSON_ID.findall(path.read_text())}
    return found


def test_every_cited_lesson_id_is_explained_in_docs_lessons() -> None:
    explained = {f"L{n}" for n in _LESSON_ROW.findall(LESSONS.read_text())}
    assert {"L01", "L21", "L31"} <= explained
    assert cited_lesson_ids() >= {"L01", "L21"}  # the scan sees the code's citations
    missing = cited_lesson_ids() - explained
    assert not missing, f"cited in the code but not explained in docs/lessons.md: {sorted(missing)}"


def test_the_regression_tests_docs_lessons_names_exist() -> None:
    named = set(re.findall(r"`(test_[a-z0-9_]+)`", LESSONS.read_text()))
    tests = (ROOT / "tests").rglob("test_*.py")
    defined = {name for path in tests for name in re.findall(r"def (test_[a-z0-9_]+)", path.read_text())}
    assert named, "docs/lessons.md names no regression test"
    assert not named - defined, f"docs/lessons.md names tests that do not exist: {sorted(named - defined)}"
