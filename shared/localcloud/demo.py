"""``make demo``: the night of 2026-01-24 flowing 2→3→4→5→6 through the four real functions.

Starts the emulator stack, creates the topics and tables from the pipeline definition,
starts each transition function in its own functions-framework process behind a Pub/Sub
push subscription (as a direct Pub/Sub trigger does in the cloud), then plays the
processors: it publishes phase-2 completions, and whenever a phase trigger appears it
publishes that phase's processor completions. BDL misses GSW@MIN (0022500644); ESPN has
it, so the coverage gate passes on the fallback source (lesson L13). Finally it prints
the triggers and the ``phase_execution_log`` rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.contracts.messages import PhaseTrigger
from shared.gcp import bigquery_client, publisher_client, subscriber_client
from shared.localcloud.emulators import EmulatorUnavailableError, LocalCloud
from shared.localcloud.functions import FunctionProcess, start_function
from shared.localcloud.topology import ensure_subscription, ensure_tables, ensure_topics
from shared.pipeline.definition import PipelineDefinition, load_definition
from shared.structured_log import configure, reset_configuration

GAME_DATE = date(2026, 1, 24)
GAMES = [  # numeric NBA id, away, home — all Final
    ("0022500644", "GSW", "MIN"),
    ("0022500645", "BOS", "NYK"),
    ("0022500646", "LAL", "DEN"),
    ("0022500647", "MIA", "CHI"),
    ("0022500648", "PHX", "DAL"),
]


def _completion(processor: str, phase: int, **extra: Any) -> bytes:
    body = {
        "processor_name": processor,
        "phase": phase,
        "execution_id": f"{processor}-{uuid.uuid4().hex[:8]}",
        "correlation_id": f"demo-night-{GAME_DATE}",
        "game_date": GAME_DATE.isoformat(),
        "status": extra.pop("status", "success"),
        "record_count": extra.pop("record_count", 240),
        "timestamp": datetime.now(UTC).isoformat(),
        **extra,
    }
    return json.dumps(body).encode()


def _seed_games(cloud: LocalCloud, definition: PipelineDefinition) -> None:
    bq = bigquery_client(cloud.project)
    games, p, now = definition.games, cloud.project, datetime.now(UTC).isoformat()
    day = GAME_DATE.isoformat()
    bq.insert_rows_json(
        f"{p}.{games.schedule_table}",
        [
            {
                "game_id": nba,
                "game_date": day,
                "away_team_tricode": a,
                "home_team_tricode": h,
                "game_status": "Final",
                "updated_at": now,
            }
            for nba, a, h in GAMES
        ],
    )
    tables = {s.name: s.table for s in games.boxscore_sources}
    bq.insert_rows_json(
        f"{p}.{tables['bdl']}",
        [  # BDL (numeric ids) misses GSW@MIN
            {"game_id": nba, "game_date": day, "player_name": "-", "points": 0} for nba, _, _ in GAMES[1:]
        ],
    )
    bq.insert_rows_json(
        f"{p}.{tables['espn']}",
        [  # ESPN (date-teams ids) has it
            {"game_id": f"{GAME_DATE:%Y%m%d}_GSW_MIN", "game_date": day, "player_name": "-", "points": 0}
        ],
    )


def _phase_processors(definition: PipelineDefinition, phase: int) -> list[str]:
    transition = definition.transition_from(phase)
    names: list[str] = []
    for _, expected, critical, optional in transition.processor_sets():
        for name in (*expected, *critical, *optional):
            if name not in names:
                names.append(name)
    return names


def run(out: Any = sys.stdout, timeout: float = 180.0) -> int:
    definition = load_definition()

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    say("starting the local cloud: Pub/Sub + Firestore emulators, local-bigquery ...")
    cloud = LocalCloud(project="phasechain-demo").start()
    in_process_log = cloud.workdir / "in-process.log"
    log_stream = open(in_process_log, "w")
    configure(stream=log_stream)  # JSON logs of the in-process services stay out of the narration
    functions: list[FunctionProcess] = []
    try:
        with cloud.environ() as env:
            return _night(cloud, env, definition, functions, say, timeout)
    finally:
        for fn in functions:
            fn.stop()
        reset_configuration()
        log_stream.close()
        cloud.stop()


def _night(
    cloud: LocalCloud,
    env: dict[str, str],
    definition: PipelineDefinition,
    functions: list[FunctionProcess],
    say: Any,
    timeout: float,
) -> int:
    say(f"  pids {cloud.pids}")
    publisher, subscriber = publisher_client(), subscriber_client()
    ensure_topics(publisher, cloud.project, definition)
    ensure_tables(bigquery_client(cloud.project), cloud.project, definition)
    _seed_games(cloud, definition)
    log_dir = cloud.workdir / "functions"
    for t in definition.transitions:
        fn = start_function(t.name, env, log_dir)
        functions.append(fn)
        ensure_subscription(
            subscriber, cloud.project, definition.source_topic(t), f"{t.name}-push", push_endpoint=fn.url
        )
        say(f"  function {t.name} on {fn.url} (pid {fn.process.pid}) <- push from {definition.source_topic(t)}")
    captures = {}
    for t in definition.transitions:
        topic = definition.target_topic(t)
        captures[t.name] = ensure_subscription(subscriber, cloud.project, topic, f"demo-watch-{topic}")

    def publish(phase: int, processor: str, times: int = 1, **extra: Any) -> None:
        topic = publisher.topic_path(cloud.project, definition.phase(phase).completion_topic)
        data = _completion(processor, phase, **extra)
        for _ in range(times):  # times=2: the same message twice, as Pub/Sub may deliver it
            publisher.publish(topic, data).result(timeout=30)
        status = extra.get("status", "success")
        say(f"  phase {phase} processor {processor}: {status}" + (f" (published {times} times)" if times > 1 else ""))

    bdl = definition.games.boxscore_sources[0].processor
    say(f"\nnight of {GAME_DATE}: phase 2 raw processors report")
    for name in _phase_processors(definition, 2):
        if name == bdl:  # BDL's API has no boxscore for GSW@MIN: the scraper run fails
            publish(
                2,
                name,
                times=2,
                status="failed",
                error_type="transient",
                record_count=0,
                error_message="BDL API returned no boxscore for game 0022500644 (GSW@MIN)",
            )
        else:
            publish(2, name)

    seen: list[PhaseTrigger] = []
    deadline = time.monotonic() + timeout
    pending = [t.name for t in definition.transitions]
    while pending and time.monotonic() < deadline:
        name = pending[0]
        response = subscriber.pull(subscription=captures[name], max_messages=10, timeout=10, return_immediately=True)
        if not response.received_messages:
            time.sleep(0.3)
            continue
        subscriber.acknowledge(subscription=captures[name], ack_ids=[m.ack_id for m in response.received_messages])
        for received in response.received_messages:
            trigger = PhaseTrigger.model_validate_json(received.message.data)
            seen.append(trigger)
            say(f"\n==> {trigger.trigger_id} [{trigger.status}] {trigger.reason}")
            if trigger.missing_games:
                say(f"    missing games: {', '.join(trigger.missing_games)}")
        pending.pop(0)
        next_phase = definition.transition(name).target_phase
        if next_phase == 5:
            publish(5, definition.transition_from(5).expected[0], completion_pct=96.4, record_count=412)
        elif any(t.source_phase == next_phase for t in definition.transitions):
            for processor in _phase_processors(definition, next_phase):
                publish(next_phase, processor)
    if pending:
        say(f"\nFAILED: no trigger for {pending} within {timeout:.0f}s")
        for fn in functions:
            say(f"--- {fn.name} log ---\n{fn.log_tail()}")
        return 1
    if seen[-1].export_types:
        say(f"    phase 6 exports for target_date {seen[-1].target_date}: {', '.join(seen[-1].export_types)}")
    _print_log(cloud, definition, say)
    return _retry_act(cloud, definition, say, timeout)


def _retry_act(cloud: LocalCloud, definition: PipelineDefinition, say: Any, timeout: float) -> int:
    """Auto-retry of the failed BDL run: pending → retrying (3 times) → failed_permanent → ESPN fallback.

    The retry service and the phase 2→3 transition service run in-process on one clock that
    skips ahead to each row's next retry time (15·2ⁿ minutes), so the demo does not wait
    hours. The simulated phase-2 processors answer each RetryRequest from the retry topic.
    """
    import base64

    from shared.clock import FixedClock
    from shared.contracts.messages import RetryRequest, RetryTick
    from shared.orchestration.runtime import build_service
    from shared.retry.runtime import build_retry_service

    bdl = definition.games.boxscore_sources[0].processor
    subscriber = subscriber_client()
    retry_topic = definition.phase(2).retry_topic
    assert retry_topic is not None
    sub = ensure_subscription(subscriber, cloud.project, retry_topic, "demo-phase2-processors")
    start = datetime.now(UTC)
    clock = FixedClock(start)
    service = build_retry_service(definition=definition, clock=clock, environ=cloud.env())
    phase2 = build_service(definition.transition_from(2).name, definition=definition, clock=clock, environ=cloud.env())

    def report(processor: str, **extra: Any) -> None:
        body = json.loads(_completion(processor, 2, **extra))
        body["timestamp"] = clock.now().isoformat()
        phase2.handle_event(
            {
                "message": {
                    "data": base64.b64encode(json.dumps(body).encode()).decode(),
                    "messageId": uuid.uuid4().hex,
                    "publishTime": clock.now().isoformat(),
                }
            }
        )

    def queue_line() -> str:
        rows = service.queue.rows(game_date=GAME_DATE)
        return "; ".join(
            f"{r.processor_name}: {r.status} ({r.retry_count}/{r.max_retries} retries"
            + (f", fallback for {r.fallback_for})" if r.fallback_for else ")")
            for r in rows
        )

    say(f"\nauto-retry of the failed {bdl} run for {GAME_DATE} (the clock skips to each due time):")
    say(f"  queue: {queue_line()}")
    for _ in range(10):
        rows = service.queue.rows(game_date=GAME_DATE)
        if not any(r.status in ("pending", "retrying") for r in rows):
            break
        due = [r.next_retry_at for r in rows if r.status == "pending" and r.next_retry_at]
        if due and min(due) > clock.now():
            clock.set(min(due))
        tick = service.tick(RetryTick())
        minutes = (clock.now() - start).total_seconds() / 60
        done = {k: v for k, v in tick.summary().items() if k != "dry_run"}
        say(f"  tick at +{minutes:.0f} min: {done or 'nothing due'}")
        for data in _pull_all(subscriber, sub):
            request = RetryRequest.model_validate_json(data)
            if request.processor_name == bdl:  # BDL still has no boxscore for GSW@MIN
                report(
                    bdl,
                    status="failed",
                    error_type="transient",
                    record_count=0,
                    error_message=f"retry {request.attempt}: BDL API still has no boxscore for 0022500644",
                )
                say(f"    {bdl} retry {request.attempt} failed again")
            else:  # the fallback source has the game
                report(request.processor_name, record_count=36)
                say(f"    {request.processor_name} ran as fallback for {request.fallback_for}: success")
        say(f"    queue: {queue_line()}")
    final = service.queue.rows(game_date=GAME_DATE)
    ok = any(r.processor_name == bdl and r.status == "failed_permanent" for r in final) and any(
        r.fallback_for == bdl and r.status == "succeeded" for r in final
    )
    say("auto-retry: " + (f"{bdl} failed_permanent, fallback succeeded" if ok else "FAILED"))
    if not ok:
        return 1
    return _monitor_act(cloud, definition, say)


def _monitor_act(cloud: LocalCloud, definition: PipelineDefinition, say: Any) -> int:
    """The transition monitor on the morning after: a silent night before, the retry queue, dedup."""
    from shared.clock import FixedClock
    from shared.contracts.messages import MonitorTick
    from shared.monitor.checks import monitor_heartbeat
    from shared.monitor.runtime import build_monitor

    silent_night = GAME_DATE - timedelta(days=1)  # games were played; no processor ever reported
    bq = bigquery_client(cloud.project)
    bq.insert_rows_json(
        f"{cloud.project}.{definition.games.schedule_table}",
        [
            {
                "game_id": f"00225006{n:02d}",
                "game_date": silent_night.isoformat(),
                "away_team_tricode": a,
                "home_team_tricode": h,
                "game_status": "Final",
                "updated_at": datetime.now(UTC).isoformat(),
            }
            for n, (a, h) in enumerate([("SAC", "POR"), ("ATL", "ORL")], start=30)
        ],
    )
    clock = FixedClock(datetime(2026, 1, 25, 15, 0, tzinfo=UTC))  # 10:00 in New York
    monitor = build_monitor(definition=definition, clock=clock, environ=cloud.env())
    say(f"\ntransition monitor at {clock.now():%Y-%m-%d %H:%M} UTC (runs every 10 min in the cloud):")
    report, alerts = monitor.run(MonitorTick())
    for finding in report.findings:
        say(f"  [{finding.severity}] {finding.kind}: {finding.message}")
    say(f"  alerts sent: {len(alerts.alerted) if alerts else 0}")
    clock.advance(minutes=10)
    report, alerts = monitor.run(MonitorTick())
    say(
        f"  10 min later: {len(report.findings)} finding(s), alerts sent: {len(alerts.alerted) if alerts else 0} "
        f"(unchanged findings are not re-alerted)"
    )
    clock.advance(minutes=3)
    say(f"  {monitor_heartbeat(monitor.checks.firestore, definition, clock.now())}")
    kinds = {f.kind for f in report.findings}
    return 0 if {"silent", "grid_gap", "retry_failed_permanent"} <= kinds and alerts and not alerts.alerted else 1


def _pull_all(subscriber: Any, subscription: str) -> list[bytes]:
    out: list[bytes] = []
    for _ in range(20):
        response = subscriber.pull(subscription=subscription, max_messages=10, timeout=10, return_immediately=True)
        if response.received_messages:
            subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages])
            out += [m.message.data for m in response.received_messages]
            return out
        time.sleep(0.2)
    return out


def _print_log(cloud: LocalCloud, definition: PipelineDefinition, say: Any) -> None:
    s = definition.pipeline
    table = f"`{cloud.project}.{s.dataset}.{s.phase_execution_log_table}`"
    rows: list[Any] = []
    for _ in range(50):  # rows are streamed right after each trigger
        rows = list(
            bigquery_client(cloud.project)
            .query(
                f"SELECT phase_name, game_date, status, trigger_id, duration_seconds, games_processed "
                f"FROM {table} ORDER BY execution_timestamp"
            )
            .result()
        )
        if len(rows) >= len(definition.transitions):
            break
        time.sleep(0.2)
    say(f"\nphase_execution_log ({len(rows)} rows):")
    say(f"  {'phase_name':<18} {'game_date':<11} {'status':<18} {'trigger_id':<34} {'duration_s':>10} games")
    for r in rows:
        say(
            f"  {r['phase_name']:<18} {r['game_date']!s:<11} {r['status']:<18} {r['trigger_id'] or '-':<34} "
            f"{(r['duration_seconds'] or 0):>10.2f} {r['games_processed'] if r['games_processed'] is not None else '-'}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args(argv)
    try:
        return run(timeout=args.timeout)
    except EmulatorUnavailableError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
