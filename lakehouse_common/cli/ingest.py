"""``lakehouse ingest FILE --dataset NAME``: upload a file through the gateway (SPEC §4, ingestd).

::

    lakehouse ingest workers.csv --dataset workers [--format csv|jsonl|parquet]
        [--mode replace|append] [--required id,role] [--gateway URL] [--token TOKEN] [--json]

The file streams to ``POST /v1/ingest/{dataset}`` on the gateway (``--gateway``, else
``$LAKEHOUSE_GATEWAY_URL``, else the configured gateway) with a progress bar over the bytes sent
(on stderr); the format comes from ``--format`` or the file's extension. On success the new
version's manifest is printed on stdout (name, version, rows, files, then the schema; ``--json``
prints the manifest as JSON instead).

Exit codes: 0 ingested; 1 the gateway or ingestd refused or failed (the error envelope's message
and the first row errors go to stderr) or could not be reached; 2 bad local input (missing
file, unknown format, invalid dataset name) — the code typer uses for its own usage errors.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, cast

import httpx
import orjson
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from lakehouse_common.cli.options import ConfigOption, GatewayOption, TokenOption
from lakehouse_common.config import ConfigError, load_settings
from lakehouse_common.contracts.catalog import DatasetManifest, validate_dataset_name
from lakehouse_common.contracts.ingest import (
    FORMATS,
    MEDIA_TYPE_OF_FORMAT,
    MODES,
    IndexJob,
    IndexJobRequest,
    IngestErrorDetails,
    IngestFormat,
    IngestMode,
    format_of_filename,
    index_job_path,
    ingest_params,
    ingest_path,
    job_path,
)
from lakehouse_common.errors import InvalidInput

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "ingest"]

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2  # the same code click/typer use for usage errors
UPLOAD_CHUNK = 1024 * 1024
SHOWN_ROW_ERRORS = 20


# The demo roster's defaults for --index. The state is also spelled out: MiniLM places "Aurora,
# IL" between Aurora IL and Aurora CO workers when the text has only the code (measured).
DEFAULT_TEMPLATE = (
    "{role} in {city}, {state} ({state_name}). Skills: {skills}. Certifications: {certifications}"
)
DEFAULT_METADATA = "role,city,state,available"


def _fail(reason: str, code: int) -> typer.Exit:
    typer.echo(f"lakehouse ingest: {reason}", err=True)
    return typer.Exit(code)


def _gateway_url(gateway: str | None, config: Path | None) -> str:
    if gateway:
        return gateway.rstrip("/")
    try:
        return load_settings(config).url_of("gateway")
    except ConfigError as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from None


def _check_input(
    file: Path, dataset: str, format: str | None, mode: str
) -> tuple[IngestFormat, IngestMode]:
    if not file.is_file():
        why = "is not a file" if file.exists() else "does not exist"
        raise _fail(f"{file} {why}", EXIT_BAD_INPUT)
    try:
        validate_dataset_name(dataset)
    except InvalidInput as exc:
        raise _fail(exc.message, EXIT_BAD_INPUT) from None
    if mode not in MODES:
        raise _fail(f"--mode must be one of {', '.join(MODES)}, not {mode!r}", EXIT_BAD_INPUT)
    if format is not None and format not in FORMATS:
        raise _fail(f"--format must be one of {', '.join(FORMATS)}, not {format!r}", EXIT_BAD_INPUT)
    fmt = cast(IngestFormat | None, format) or format_of_filename(file.name)
    if fmt is None:
        raise _fail(
            f"cannot tell the format of {file.name!r} from its extension; pass --format "
            + "|".join(FORMATS),
            EXIT_BAD_INPUT,
        )
    return fmt, cast(IngestMode, mode)


def _upload(
    url: str, file: Path, params: dict[str, str], headers: dict[str, str], timeout: float
) -> httpx.Response:
    """POST the file in chunks; the bar advances as httpx takes each chunk off the generator."""
    size = file.stat().st_size
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    with progress:
        task = progress.add_task(f"uploading {file.name}", total=size)

        def chunks() -> Iterator[bytes]:
            with file.open("rb") as fh:
                while chunk := fh.read(UPLOAD_CHUNK):
                    yield chunk
                    progress.advance(task, len(chunk))
            progress.update(task, description=f"converting {file.name}")

        with httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0)) as client:
            response = client.post(
                url,
                params=params,
                content=chunks(),
                headers={**headers, "Content-Length": str(size)},
            )
        progress.update(task, description=f"sent {file.name}")
        return response


def _print_manifest(manifest: DatasetManifest) -> None:
    console = Console()
    summary = Table(title=f"dataset {manifest.name}", title_justify="left")
    for column in ("name", "version", "rows", "files", "bytes", "mode"):
        summary.add_column(column, justify="right" if column != "name" else "left")
    summary.add_row(
        manifest.name,
        str(manifest.version),
        f"{manifest.row_count:,}",
        str(len(manifest.files)),
        f"{sum(f.bytes for f in manifest.files):,}",
        str(manifest.source.get("mode", "")),
    )
    console.print(summary)
    schema = Table(title="schema", title_justify="left")
    schema.add_column("column")
    schema.add_column("type")
    for field in manifest.schema_:
        schema.add_row(field.name, field.type)
    console.print(schema)


def _print_error(response: httpx.Response) -> None:
    console = Console(stderr=True)
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        text = response.text[:300].strip() or response.reason_phrase
        console.print(f"[red]error[/red]: HTTP {response.status_code}: {text}", highlight=False)
        return
    console.print(
        f"[red]error[/red]: HTTP {response.status_code} {error.get('code', '')}: "
        f"{error.get('message', '')}",
        highlight=False,
    )
    rows = IngestErrorDetails.from_details(error.get("details"))
    if rows is None or not rows.errors:
        return
    table = Table(title="problems", title_justify="left")
    table.add_column("row", justify="right")
    table.add_column("column")
    table.add_column("reason")
    for item in rows.errors[:SHOWN_ROW_ERRORS]:
        table.add_row("" if item.row is None else str(item.row), item.column or "", item.reason)
    console.print(table)
    hidden = len(rows.errors) - SHOWN_ROW_ERRORS
    if hidden > 0 or rows.truncated:
        more = f"{max(hidden, 0)} more listed" if hidden > 0 else ""
        cut = "the scan stopped at the error limit" if rows.truncated else ""
        console.print(" and ".join(p for p in (more, cut) if p) + ".", highlight=False)
    trace = body.get("trace_id") if isinstance(body, dict) else None
    if trace:
        console.print(f"trace id: {trace}", highlight=False)


def ingest(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", help="CSV, JSONL or Parquet file to ingest.", show_default=False
        ),
    ],
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset", "-d", help="Dataset to write (e.g. workers).", show_default=False
        ),
    ],
    format: Annotated[
        str | None,
        typer.Option("--format", help="csv, jsonl or parquet (default: from the extension)."),
    ] = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="replace: the version holds exactly this file's rows; append: the previous "
            "version's rows, then these.",
        ),
    ] = "replace",
    required: Annotated[
        str | None,
        typer.Option(
            "--required", help="Comma-separated columns that must be present and non-null."
        ),
    ] = None,
    gateway: GatewayOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the answer.")
    ] = 600.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the manifest as JSON instead of tables.")
    ] = False,
    index: Annotated[
        str | None,
        typer.Option(
            "--index",
            help="After ingesting, embed every row into this vectord index (a live bar follows "
            "the job).",
            show_default=False,
        ),
    ] = None,
    template: Annotated[
        str,
        typer.Option("--template", help="Text rendered per row for --index ({column} fields)."),
    ] = DEFAULT_TEMPLATE,
    metadata: Annotated[
        str,
        typer.Option("--metadata", help="Comma-separated columns stored as metadata (--index)."),
    ] = DEFAULT_METADATA,
    id_column: Annotated[str, typer.Option("--id-column", help="Row id column (--index).")] = "id",
) -> None:
    """Ingest a CSV, JSONL or Parquet file as the next version of a dataset (via the gateway)."""
    fmt, ingest_mode = _check_input(file, dataset, format, mode)
    needed = [name.strip() for name in (required or "").split(",") if name.strip()]
    base = _gateway_url(gateway, config)
    url = base + ingest_path(dataset)
    params = ingest_params(format=fmt, mode=ingest_mode, required=needed, filename=file.name)
    headers = {"Content-Type": MEDIA_TYPE_OF_FORMAT[fmt]}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = _upload(url, file, params, headers, timeout)
    except httpx.TimeoutException:
        raise _fail(f"no answer from {url} within {timeout:g} s", EXIT_FAILED) from None
    except httpx.TransportError as exc:
        raise _fail(f"cannot reach the gateway at {url}: {exc}", EXIT_FAILED) from None
    except OSError as exc:
        raise _fail(f"cannot read {file}: {exc.strerror or exc}", EXIT_BAD_INPUT) from None
    if response.status_code >= 400:
        _print_error(response)
        raise typer.Exit(EXIT_FAILED)
    try:
        manifest = DatasetManifest.model_validate_json(response.content)
    except ValueError:
        raise _fail(
            f"unexpected answer (HTTP {response.status_code}): {response.text[:200]}",
            EXIT_FAILED,
        ) from None
    if as_json:
        typer.echo(orjson.dumps(manifest.model_dump(mode="json", by_alias=True)).decode())
    else:
        _print_manifest(manifest)
    if index is not None:
        request = IndexJobRequest(
            index=index,
            text_template=template,
            id_column=id_column,
            metadata_columns=[c.strip() for c in metadata.split(",") if c.strip()],
            version=manifest.version,
        )
        _run_index_job(base, dataset, request, headers, timeout)


def _run_index_job(
    base: str, dataset: str, request: IndexJobRequest, headers: dict[str, str], timeout: float
) -> None:
    """Start the index job and follow it with a live bar until it ends; exit 1 if it fails."""
    auth = {k: v for k, v in headers.items() if k == "Authorization"}
    with httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0), headers=auth) as client:
        resp = client.post(
            base + index_job_path(dataset), json=request.model_dump(exclude_none=True)
        )
        if resp.status_code >= 400:
            _print_error(resp)
            raise typer.Exit(EXIT_FAILED)
        job = IndexJob.model_validate_json(resp.content)
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} rows"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        with progress:
            task = progress.add_task(f"indexing into {job.index}", total=job.total or 1)
            while job.state in ("queued", "running"):
                time.sleep(0.5)
                resp = client.get(base + job_path(job.id))
                if resp.status_code >= 400:
                    _print_error(resp)
                    raise typer.Exit(EXIT_FAILED)
                job = IndexJob.model_validate_json(resp.content)
                progress.update(
                    task, completed=job.done, description=f"indexing ({job.rows_per_s:,.0f} rows/s)"
                )
    if job.state != "succeeded":
        raise _fail(f"index job {job.id} {job.state}: {job.error}", EXIT_FAILED)
    typer.echo(f"indexed {job.done} rows into {job.index} ({job.rows_per_s:,.0f} rows/s)")
