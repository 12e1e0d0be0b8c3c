"""`lakehouse stack start|stop|status` (SPEC §9); `scripts/*_stack.sh` call these."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from lakehouse_common.cli.options import ConfigOption
from lakehouse_common.config import ConfigError, LakehouseSettings, load_settings
from lakehouse_common.contracts.gateway import HEALTH
from lakehouse_common.ops.stack import StackError, stack_status, start_stack, stop_stack

stack_app = typer.Typer(help="Start, stop and inspect the local stack.", no_args_is_help=True)


def _settings(config: Path | None) -> LakehouseSettings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@stack_app.command("start")
def start(
    config: ConfigOption = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for each /health")] = 60.0,
) -> None:
    """Start every installed daemon in order; leave healthy ones alone."""
    settings = _settings(config)
    try:
        start_stack(settings, config_path=config, timeout_s=timeout, echo=typer.echo)
    except StackError as exc:
        typer.echo(f"start failed: {exc}", err=True)
        raise typer.Exit(1) from None
    gateway = settings.url_of("gateway")
    typer.echo("")
    typer.echo(f"gateway listening on {gateway}  (logs: {settings.data_dir / 'logs'})")
    typer.echo(f"try:  curl -s {gateway}{HEALTH}")
    typer.echo("stop:  make stop")


@stack_app.command("stop")
def stop(
    config: ConfigOption = None,
    grace: Annotated[
        float | None, typer.Option(help="seconds between TERM and KILL (default: config + 2)")
    ] = None,
) -> None:
    """Stop exactly the processes named by the pid files (TERM, then KILL after grace)."""
    stop_stack(_settings(config), grace_s=grace, echo=typer.echo)


@stack_app.command("status")
def status(config: ConfigOption = None) -> None:
    """One row per installed daemon: url, pid, running, health. Exit 1 unless all are ok."""
    rows = stack_status(_settings(config))
    table = Table("daemon", "url", "pid", "running", "health")
    for row in rows:
        table.add_row(
            row.name,
            row.url,
            str(row.pid) if row.pid else "-",
            "yes" if row.running else "no",
            row.health,
        )
    Console().print(table)
    if any(row.health != "ok" for row in rows):
        raise typer.Exit(1)
