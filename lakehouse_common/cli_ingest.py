"""`lakehouse ingest FILE --dataset NAME` through the gateway (SPEC §4). Placeholder."""

from __future__ import annotations

import typer


def ingest() -> None:
    """Ingest a CSV, JSONL or Parquet file as a new dataset version."""
    typer.echo("not implemented yet", err=True)
    raise typer.Exit(2)
