"""``phasectl lineage``: processors → phases → transitions → trigger topics → consumers, from the definition.

Read from the pipeline definition only (no backend): per phase, its processors (with their role
in the transition that leaves the phase), the scheduled jobs that re-run them, the transition
(rule, gates), the trigger topic it publishes (or the HTTP call it makes) and who consumes that
trigger, and what else reads the phase's tables downstream: sensors (grading readiness, which
publishes the grading trigger), self-heal checkpoints and the gap pass.

``build_lineage`` is pure (the tree); ``render_text`` and ``Node.as_dict`` show it.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from phasectl.core import Context, UsageError, _processor
from shared.pipeline.definition import Job, PipelineDefinition, Transition

JSON_VERSION = 1


@dataclass(frozen=True)
class Node:
    """One element of the tree: ``kind`` (phase, processor, job, transition, topic, consumer, sensor,
    check), its name, one line of detail and what hangs below it."""

    kind: str
    name: str
    detail: str = ""
    children: tuple[Node, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "detail": self.detail,
            "children": [c.as_dict() for c in self.children],
        }

    def walk(self) -> Iterable[Node]:
        yield self
        for child in self.children:
            yield from child.walk()


# -- pure: where things are --------------------------------------------------------------------------
def table_phases(definition: PipelineDefinition) -> dict[str, int]:
    """Each processor's output table (without dataset) → its phase."""
    return {p.output_table: p.phase for p in definition.processors if p.output_table}


def phase_of_table(definition: PipelineDefinition, table: str) -> int | None:
    return table_phases(definition).get(table.rsplit(".", 1)[-1])


def _role(transition: Transition, processor: str) -> str:
    """``critical`` / ``optional`` / ``expected`` (per mode when they differ), or ``not counted``."""
    roles = []
    for label, expected, critical, optional in transition.processor_sets():
        role = (
            "critical"
            if processor in critical
            else "optional"
            if processor in optional
            else "expected"
            if processor in expected
            else None
        )
        if role is not None:
            roles.append(f"{role} ({label.removeprefix('modes.')})" if label else role)
    return ", ".join(roles) if roles else "not counted"


def job_phases(definition: PipelineDefinition, job: Job) -> set[int]:
    """The phases whose processors a job runs: the processors named in its HTTP body (any name form),
    or the phase a transition starts over the same service (the coordinator's ``/start``)."""
    phases: set[int] = set()
    body = job.http.body if job.http is not None else None
    names = body.get("processors") if isinstance(body, Mapping) else None
    for raw in names if isinstance(names, list) else ():
        for phase in sorted({p.phase for p in definition.processors}):
            if definition.normalise_processor(phase, str(raw)) is not None:
                phases.add(phase)
    if job.http is not None and not phases:
        service = definition.services.get(job.http.service)
        for t in definition.transitions:
            http = t.delivery.http
            if service is not None and http is not None and service.url_env == http.url_env:
                phases.add(t.target_phase)
    return phases


def _service_for(definition: PipelineDefinition, url_env: str) -> str | None:
    return next((name for name, s in definition.services.items() if s.url_env == url_env), None)


def _trigger_node(definition: PipelineDefinition, t: Transition) -> Node:
    target = definition.phase(t.target_phase)
    topic = definition.target_topic(t)
    count = len(definition.processors_of(target.number))
    starts = (
        f"{count} processor(s) start on it" if count else "its service starts on it (no processor of it is defined)"
    )
    per_table = ", one message per completed source table" if t.delivery.per_source_table else ""
    consumers = [Node("consumer", f"phase {target.number} {target.name}", starts + per_table)]
    http = t.delivery.http
    if http is not None:
        service = _service_for(definition, http.url_env) or f"${http.url_env}"
        consumers = [
            Node(
                "consumer",
                service,
                f"POST ${http.url_env}{http.path} once per trigger id (starts phase {target.number} {target.name}); "
                f"the topic {topic} is published too",
            )
        ]
    return Node("topic", topic, "trigger topic", tuple(consumers))


def _transition_node(definition: PipelineDefinition, t: Transition) -> Node:
    rule = t.rule.value
    if t.deadline_tiers:
        tiers = ", ".join(f"≥{x.min_completed} after {x.after_minutes} min" for x in t.deadline_tiers)
        rule += f" ({tiers}, from the first completion)"
    if t.modes:
        rule += f"; modes {', '.join(m.name for m in t.modes)}"
    gates = f"; gates {', '.join(t.gates)}" if t.gates else ""
    detail = f"reads {definition.source_topic(t)}; {rule}{gates}"
    return Node("transition", t.name, detail, (_trigger_node(definition, t),))


def _readers(definition: PipelineDefinition, phase: int) -> list[Node]:
    """Sensors, self-heal checkpoints and the gap pass that read the phase's tables."""
    out: list[Node] = []
    for sensor in definition.timed_triggers():
        tables = [x.table for c in sensor.conditions for x in (c.table, c.actuals) if x is not None]
        labels = [c.label or c.kind for c in sensor.conditions for x in (c.table, c.actuals) if x is not None]
        hits = sorted(
            {label for table, label in zip(tables, labels, strict=True) if phase_of_table(definition, table) == phase}
        )
        if hits:
            topic = Node(
                "topic",
                sensor.topic,
                "its trigger",
                (Node("consumer", "grading", f"outside this package: reads {sensor.topic}"),),
            )
            slots = ", ".join(s.name for s in sensor.slots)
            detail = f"sensor (function {sensor.function}); reads {', '.join(hits)}; slots {slots}"
            out.append(Node("sensor", sensor.name, detail, (topic,)))
    for target in definition.heal.self_heal.targets:
        steps = [s for s in target.steps if s.phase == phase]
        for step in steps:
            out.append(
                Node(
                    "check",
                    f"self-heal {target.name}",
                    f"{target.date}: rows in {step.table.table}, else re-triggers {step.transition}",
                )
            )
    outputs = [o.table for o in definition.heal.gaps.outputs if o.phase == phase]
    if outputs:
        out.append(Node("check", "gap pass", f"expected outputs {', '.join(outputs)} (phasectl gaps)"))
    return out


def build_lineage(definition: PipelineDefinition, processor: str | None = None) -> tuple[Node, ...]:
    """The tree, one node per phase in order; with ``processor`` (canonical), from its phase down,
    that phase showing only it."""
    start = definition.processor(processor).phase if processor else min(p.number for p in definition.phases)
    leaving = {t.source_phase: t for t in definition.transitions}
    sources = {s.processor: s.name for s in definition.games.boxscore_sources}
    fallback_of = {fallback: failed for failed, fallback in definition.retry.fallbacks.items()}
    nodes = []
    for phase in sorted(definition.phases, key=lambda p: p.number):
        if phase.number < start:
            continue
        t = leaving.get(phase.number)
        first = phase.number == start
        procs = [p for p in definition.processors_of(phase.number) if not (first and processor) or p.name == processor]
        proc_nodes = []
        for p in procs:
            notes = [_role(t, p.name) if t is not None else "no transition leaves this phase"]
            if p.output_table:
                notes.append(f"writes {p.output_table}")
            if p.name in sources:
                notes.append(f"boxscore source {sources[p.name]}")
            if p.name in definition.retry.fallbacks:
                notes.append(f"retry falls back to {definition.retry.fallbacks[p.name]}")
            if p.name in fallback_of:
                notes.append(f"fallback for {fallback_of[p.name]}")
            proc_nodes.append(Node("processor", p.name, "; ".join(notes)))
        children: list[Node] = []
        if proc_nodes:
            children.append(Node("processors", f"{len(proc_nodes)} processor(s)", "", tuple(proc_nodes)))
        jobs = [j for j in definition.jobs if j.dispatched and phase.number in job_phases(definition, j)]
        if jobs:
            job_nodes = tuple(
                Node("job", j.name, f"{j.cron} ({definition.job_zone(j).key}): {j.description}") for j in jobs
            )
            children.append(Node("jobs", f"{len(jobs)} scheduled job(s) run them", "", job_nodes))
        if t is not None:
            children.append(_transition_node(definition, t))
        children += _readers(definition, phase.number)
        started = f"started by {phase.trigger_topic}; " if phase.trigger_topic else ""
        detail = f"{started}completions on {phase.completion_topic}"
        nodes.append(Node("phase", f"phase {phase.number} {phase.name}", detail, tuple(children)))
    return tuple(nodes)


def render_text(definition: PipelineDefinition, nodes: Sequence[Node], processor: str | None = None) -> str:
    head = f"phasectl lineage — {definition.pipeline.name}, from the pipeline definition"
    if processor:
        head += f" (processor {processor} and what is downstream of it)"
    lines = [head, ""]

    def emit(node: Node, depth: int) -> None:
        if node.kind in ("processors", "jobs"):
            lines.append(f"{'  ' * depth}{node.name}:")
        else:
            label = node.name if node.kind in ("phase", "processor") else f"{node.kind} {node.name}"
            arrow = "→ " if node.kind in ("topic", "consumer") else ""
            lines.append(f"{'  ' * depth}{arrow}{label}" + (f" — {node.detail}" if node.detail else ""))
        for child in node.children:
            emit(child, depth + 1)

    for node in nodes:
        emit(node, 0)
    return "\n".join(lines)


def lineage_json(definition: PipelineDefinition, nodes: Sequence[Node], processor: str | None) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "command": "lineage",
        "pipeline": definition.pipeline.name,
        "processor": processor,
        "phases": [n.as_dict() for n in nodes],
    }


def add_parser(sub: Any) -> None:
    """``phasectl lineage [--processor P] [--json]``."""
    from phasectl.commands.audit import epilog

    p = sub.add_parser(
        "lineage",
        help="processors → phases → transitions → trigger topics → consumers, from the definition",
        epilog=epilog(
            ("To see the whole chain as a tree", "phasectl lineage"),
            ("To see what is downstream of one processor", "phasectl lineage --processor bdl_player_boxscores"),
            ("To get the tree as JSON", "phasectl lineage --json"),
        ),
    )
    p.add_argument("--processor", metavar="P", help="only this processor and what is downstream of it (any name form)")
    p.add_argument("--json", action="store_true", help="print the tree as JSON instead of text")
    p.set_defaults(func=cmd_lineage)


def cmd_lineage(ctx: Context, args: argparse.Namespace) -> int:
    processor = None
    if args.processor:
        try:
            processor, _ = _processor(ctx, args.processor)
        except UsageError:
            known = ", ".join(p.name for p in ctx.definition.processors)
            raise UsageError(f"unknown processor {args.processor!r} (known: {known})") from None
    nodes = build_lineage(ctx.definition, processor)
    if args.json:
        ctx.dump(lineage_json(ctx.definition, nodes, processor))
    else:
        ctx.print(render_text(ctx.definition, nodes, processor))
    return 0
