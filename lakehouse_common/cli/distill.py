"""``lakehouse distill …``: the distillation batch jobs (SPEC §7; docs/distill.md).

::

    lakehouse distill run [--append-baseline] [--roster FILE] [--heldout FILE] [--json]
    lakehouse distill materialize | score | export [--roster FILE] [--heldout FILE] [--json]
    lakehouse distill audit-full [--append-baseline] [--json]
    lakehouse distill drift [A B] [--json]
    lakehouse distill replay --limit N [--model M] [--gateway URL]
    lakehouse distill feedback --label accepted|partial|rejected
                               (--trace-id ID [--kind KIND] | --sig-hash HEX) [--note T]

Every command takes ``--config FILE`` and ``--data-dir DIR`` (default: the config's
``server.data_dir``). The stages read ``<data_dir>/_kb`` directly and write below
``<data_dir>/distill/``; ``replay`` and ``feedback`` go through the gateway of a running stack
(observerd is the only writer of ``_kb``). Progress bars go to stderr, results to stdout.

Exit codes: 0 done; 1 a required audit check failed, or the stack refused or could not be
reached; 2 bad input (config, missing or stale files, bad options).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import orjson
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from lakehouse_common.cli.options import ConfigOption, GatewayOption, TokenOption
from lakehouse_common.config import ConfigError, LakehouseSettings, load_settings
from lakehouse_common.contracts.observe import ObserveResponse
from lakehouse_common.distill.audit_full import (
    AuditReport,
    append_baseline,
    audit_full,
    write_report,
)
from lakehouse_common.distill.drift import (
    drift_table,
    format_drift,
    load_baselines,
    select_baseline,
)
from lakehouse_common.distill.events import DAEMON, FEEDBACK_STREAM, HumanFeedback
from lakehouse_common.distill.export import export
from lakehouse_common.distill.jsonl import ProgressHook
from lakehouse_common.distill.layout import DistillLayout
from lakehouse_common.distill.materialize import materialize, total_input_bytes
from lakehouse_common.distill.replay import (
    RecordedTask,
    ReplayFailed,
    recorded_tasks,
    replay_tasks,
)
from lakehouse_common.distill.run import git_commit, run_pipeline
from lakehouse_common.distill.score import score
from lakehouse_common.distill.stage import DistillError, StageResult
from lakehouse_common.errors import LakehouseError
from lakehouse_common.ops.gateway import gateway_clients, refusal, unreachable

__all__ = ["distill_app"]

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

distill_app = typer.Typer(
    help="Distillation: _kb → evidence → scores → exports, audit-full, drift, replay.",
    no_args_is_help=True,
)

DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data dir holding _kb/ (default: the config's)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
RosterOption = Annotated[
    Path | None,
    typer.Option(
        "--roster",
        help="Roster (Parquet or CSV with phone and email columns) whose contacts the firewall "
        "quarantines (default: distill.roster_file).",
    ),
]
HeldoutOption = Annotated[
    Path | None,
    typer.Option(
        "--heldout",
        help='Held-out evaluation prompts, JSONL {"prompt": …} (default: distill.heldout_file).',
    ),
]
BaselineOption = Annotated[
    bool,
    typer.Option("--append-baseline", help="Append the metrics to audit_baselines.jsonl."),
]

_err = Console(stderr=True)


def _fail(reason: str, code: int) -> typer.Exit:
    typer.echo(f"lakehouse distill: {reason}", err=True)
    return typer.Exit(code)


def _settings(config: Path | None) -> LakehouseSettings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from None


def _layout(settings: LakehouseSettings, data_dir: Path | None) -> DistillLayout:
    directory = (data_dir or settings.data_dir).expanduser().resolve()
    return DistillLayout(directory)


def _echo_json(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """A hook factory: `(stage, total_bytes) -> ProgressHook`, one bar per stage on stderr."""
    if not enabled:
        yield lambda stage, total: None
        return
    progress = Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=_err,
        transient=False,
    )
    with progress:

        def start(stage: str, total: int) -> ProgressHook:
            task = progress.add_task(stage, total=max(total, 1))
            if not total:
                progress.update(task, completed=1)

            def advance(n: int) -> None:
                progress.advance(task, n)

            return advance

        yield start


def _summarise(result: StageResult) -> str:
    r = result.receipt
    if result.stage == "materialize":
        skips = sum(r["skips"].values())
        line = f"materialize  {r['records_in']:,} lines in → {r['records_out']:,} evidence rows"
        line += f" ({skips:,} skipped)" if skips else ""
    elif result.stage == "score":
        t = r["tiers"]
        line = (
            f"score        {t['accepted']:,} accepted, {t['partial']:,} partial, "
            f"{t['rejected']:,} rejected ({r['human']['labelled']:,} human-labelled)"
        )
    else:
        rows = r["rows"]
        line = (
            f"export       {rows['sft']:,} SFT, {rows['rag']:,} RAG, {rows['preference']:,} "
            f"pairs; {r['total_quarantined']:,} quarantined"
        )
    changed = len(result.written) + len(result.removed)
    return line + (f"  [{changed} files changed]" if changed else "  [nothing new]")


def _run_stage(name: str, as_json: bool, work: Any) -> None:
    try:
        result: StageResult = work()
    except DistillError as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from None
    if as_json:
        _echo_json(result.receipt)
    else:
        typer.echo(_summarise(result))


@distill_app.command("materialize")
def materialize_command(
    config: ConfigOption = None, data_dir: DataDirOption = None, as_json: JsonOption = False
) -> None:
    """_kb/*.jsonl → distill/evidence/YYYY-MM-DD/<stream>.jsonl and its receipt."""
    settings = _settings(config)
    layout = _layout(settings, data_dir)
    with _progress(not as_json) as hook:
        _run_stage(
            "materialize",
            as_json,
            lambda: materialize(
                layout,
                settings.distill,
                progress=hook("materialize", total_input_bytes(layout)),
            ),
        )


def _evidence_bytes(layout: DistillLayout) -> int:
    return sum(p.stat().st_size for p in layout.partitions(layout.evidence))


@distill_app.command("score")
def score_command(
    config: ConfigOption = None, data_dir: DataDirOption = None, as_json: JsonOption = False
) -> None:
    """Evidence → a tier per record (accepted / partial / rejected), human labels first."""
    settings = _settings(config)
    layout = _layout(settings, data_dir)
    with _progress(not as_json) as hook:
        _run_stage(
            "score",
            as_json,
            lambda: score(
                layout, settings.distill, progress=hook("score", _evidence_bytes(layout))
            ),
        )


@distill_app.command("export")
def export_command(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    roster: RosterOption = None,
    heldout: HeldoutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Scored evidence → SFT, RAG and preference pairs, through the contamination firewall."""
    settings = _settings(config)
    layout = _layout(settings, data_dir)
    with _progress(not as_json) as hook:
        _run_stage(
            "export",
            as_json,
            lambda: export(
                layout,
                settings.distill,
                heldout=heldout,
                roster=roster,
                progress=hook("export", _evidence_bytes(layout)),
            ),
        )


def _report_lines(report: AuditReport) -> list[str]:
    lines = []
    for check in report.checks:
        mark = "✓" if check.passed else ("✗" if check.required else "!")
        tag = "" if check.required else " (info)"
        lines.append(f"  {mark} p{check.phase} {check.name}{tag}: {check.detail}")
    required = [c for c in report.checks if c.required]
    lines.append(
        f"audit-full {'PASS' if report.passed else 'FAIL'}: "
        f"{sum(c.passed for c in required)}/{len(required)} required checks pass "
        f"(run {report.run_id or 'none'})"
    )
    return lines


def _finish_audit(layout: DistillLayout, report: AuditReport, append: bool, as_json: bool) -> None:
    write_report(layout, report)
    entry = append_baseline(layout, report, git_commit=git_commit()) if append else None
    if as_json:
        _echo_json({**report.as_dict(), "baseline": entry})
    else:
        for line in _report_lines(report):
            typer.echo(line)
        typer.echo(f"report: {layout.reports / 'audit_full.md'}")
        if entry is not None:
            typer.echo(f"baseline appended to {layout.baselines}")
    if not report.passed:
        raise typer.Exit(EXIT_FAILED)


@distill_app.command("audit-full")
def audit_full_command(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    roster: RosterOption = None,
    heldout: HeldoutOption = None,
    append: BaselineOption = False,
    as_json: JsonOption = False,
) -> None:
    """Phases 0–7 over the latest run → reports/audit_full.{md,json}; 1 if a required fails."""
    settings = _settings(config)
    layout = _layout(settings, data_dir)
    report = audit_full(layout, settings.distill, heldout=heldout, roster=roster)
    _finish_audit(layout, report, append, as_json)


@distill_app.command("run")
def run_command(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    roster: RosterOption = None,
    heldout: HeldoutOption = None,
    append: BaselineOption = False,
    as_json: JsonOption = False,
) -> None:
    """materialize → score → export → run summary → audit-full, with a bar per stage."""
    settings = _settings(config)
    layout = _layout(settings, data_dir)
    with _progress(not as_json) as hook:
        try:
            result = run_pipeline(
                layout, settings.distill, heldout=heldout, roster=roster, on_stage=hook
            )
        except DistillError as exc:
            raise _fail(str(exc), EXIT_BAD_INPUT) from None
    if as_json:
        write_report(layout, result.audit)
        entry = append_baseline(layout, result.audit, git_commit=git_commit()) if append else None
        _echo_json(
            {
                "summary": result.summary,
                "audit": result.audit.as_dict(),
                "written": result.written,
                "baseline": entry,
            }
        )
        if not result.audit.passed:
            raise typer.Exit(EXIT_FAILED)
        return
    for stage in result.stages:
        typer.echo(_summarise(stage))
    summary = result.summary
    typer.echo(
        f"run {summary['run_id']}  run_hash {summary['run_hash']}  "
        f"git {summary['git_commit'][:12]}  "
        + (f"{len(result.written)} files changed" if result.written else "nothing new")
    )
    _finish_audit(layout, result.audit, append, as_json=False)


@distill_app.command("drift")
def drift_command(
    a: Annotated[str, typer.Argument(help="Baseline A: position (0, -2…) or run id.")] = "-2",
    b: Annotated[str, typer.Argument(help="Baseline B: position or run id.")] = "-1",
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare two audit baselines: warn above distill.drift_threshold or leaving zero."""
    settings = _settings(config)
    layout = _layout(settings, data_dir)
    try:
        entries = load_baselines(layout.baselines)
        first, second = select_baseline(entries, a), select_baseline(entries, b)
    except DistillError as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from None
    rows = drift_table(first["metrics"], second["metrics"], settings.distill.drift_threshold)
    if as_json:
        _echo_json({"a": first, "b": second, "rows": [r.as_dict() for r in rows]})
        return
    label_a = f"A {str(first.get('run_id', ''))[:8]}"
    label_b = f"B {str(second.get('run_id', ''))[:8]}"
    typer.echo(f"A: {first.get('recorded_at')}  run {first.get('run_id')}")
    typer.echo(f"B: {second.get('recorded_at')}  run {second.get('run_id')}")
    typer.echo(format_drift(rows, label_a, label_b))


def _gateway(
    settings: LakehouseSettings, gateway: str | None, token: str | None, timeout: float
) -> httpx.Client:
    url = (gateway or settings.url_of("gateway")).rstrip("/")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=timeout)


@distill_app.command("replay")
def replay_command(
    limit: Annotated[int, typer.Option("--limit", help="Replay the last N distinct tasks.")],
    model: Annotated[
        str | None, typer.Option("--model", help="provider/model (default: chatd's).")
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    gateway: GatewayOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-run recorded iterate tasks: retrieve → chat → validate; log replay_run.v1 rows."""
    if limit < 1:
        raise _fail("--limit must be at least 1", EXIT_BAD_INPUT)
    settings = _settings(config)
    layout = _layout(settings, data_dir)
    tasks = recorded_tasks(layout, limit)
    if not tasks:
        typer.echo(f"no recorded iterate tasks with a prompt in {layout.kb}")
        return

    def done(task: RecordedTask, run: Any) -> None:
        if not as_json:
            r = run.replay
            typer.echo(
                f"  {task.kind:<5} {r.status:<11} (was {task.original.status}) "
                f"{r.latency_ms:>8.0f} ms  {r.model or '-'}  {task.prompt[:60]!r}"
            )

    with _gateway(settings, gateway, token, settings.distill.replay_timeout_s) as client:
        try:
            runs = replay_tasks(client, tasks, settings.distill, model=model, on_done=done)
        except ReplayFailed as exc:
            raise _fail(str(exc), EXIT_FAILED) from None
    counts = {
        status: sum(r.replay.status == status for r in runs)
        for status in ("accepted", "rejected", "infra_error")
    }
    changed = sum(r.verdict_changed for r in runs)
    if as_json:
        _echo_json({"replayed": len(runs), **counts, "verdict_changed": changed})
        return
    typer.echo(
        f"replayed {len(runs)}: {counts['accepted']} accepted, {counts['rejected']} rejected, "
        f"{counts['infra_error']} infra errors; {changed} verdicts changed"
    )


@distill_app.command("feedback")
def feedback_command(
    label: Annotated[str, typer.Option("--label", help="accepted, partial or rejected.")],
    trace_id: Annotated[
        str | None, typer.Option("--trace-id", help="The trace id of the work judged.")
    ] = None,
    sig_hash: Annotated[
        str | None, typer.Option("--sig-hash", help="An evidence record's sig_hash.")
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="Only records of this kind (iterate_session, …)."),
    ] = None,
    note: Annotated[str, typer.Option("--note", help="Why.")] = "",
    coordinator: Annotated[str, typer.Option("--coordinator", help="Who judged.")] = "",
    config: ConfigOption = None,
    gateway: GatewayOption = None,
    token: TokenOption = None,
) -> None:
    """Record a coordinator's label (human_feedback.v1) through observerd."""
    try:
        feedback = HumanFeedback.model_validate(
            {
                "label": label,
                "target_trace_id": trace_id,
                "target_sig_hash": sig_hash,
                "target_kind": kind,
                "note": note,
                "coordinator": coordinator,
            }
        )
    except ValueError as exc:
        raise _fail(f"bad feedback: {exc}", EXIT_BAD_INPUT) from None
    settings = _settings(config)
    url = gateway or settings.url_of("gateway")

    async def record() -> ObserveResponse:
        async with gateway_clients(url, token, timeout_s=30.0) as clients:
            return await clients.observe().append(
                FEEDBACK_STREAM, [feedback.event()], daemon=DAEMON
            )

    try:
        answer = asyncio.run(record())
    except LakehouseError as exc:
        if unreachable(exc):
            raise _fail(f"the gateway is not reachable: {exc.message}", EXIT_FAILED) from None
        raise _fail(f"observerd refused: {refusal(exc)}", EXIT_FAILED) from None
    typer.echo(f"feedback recorded: {FEEDBACK_STREAM} line {answer.first_line}")
