"""``lakehouse subjects …``: subject manifests from a roster, and one subject's audit (SPEC §8).

::

    lakehouse subjects sync --dataset workers [--subject-prefix WORKER] [--key-column id]
        [--pii first_name,last_name,phone,email] [--retention-days 2555] [--gateway URL]
    lakehouse subjects show WORKER-17 [--json]

``sync`` reads every row key of the dataset's latest version through queryd (keyset pages,
``ORDER BY`` the key) and upserts one manifest per row in batches of up to 10,000
(``POST /v1/catalog/subjects``): row key ``w-17`` → subject ``WORKER-17`` (the part after the
first ``-`` keeps its text; the prefix defaults to the dataset name, singular, upper case).
Idempotent: a second run reports every manifest unchanged and rewrites nothing. ``--pii``
defaults to the dataset's columns among :data:`DEFAULT_PII`. Row keys with no ``-`` or that make
an invalid subject id are skipped and counted.

``show`` prints a subject's manifest and the verification of its audit log.

Exit codes: 0 done; 1 the gateway or a daemon refused or failed, or could not be reached;
2 bad local input — the code typer uses for its own usage errors.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lakehouse_common.cli.options import ConfigOption, GatewayOption, TokenOption
from lakehouse_common.config import ConfigError, load_settings
from lakehouse_common.contracts.catalog import DatasetDetail, dataset_path, validate_dataset_name
from lakehouse_common.contracts.query import QUERY, QueryRequest
from lakehouse_common.contracts.subjects import (
    DEFAULT_RETENTION_DAYS,
    MAX_BATCH,
    SUBJECT_ID,
    SUBJECTS,
    SubjectBatchResult,
    subject_path,
    verify_path,
)
from lakehouse_common.errors import InvalidInput
from lakehouse_common.http import bearer

__all__ = ["DEFAULT_PII", "subjects_app", "subject_id_for"]

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
# Columns taken as personal data when --pii is not given (those the dataset has).
DEFAULT_PII = (
    "name",
    "first_name",
    "last_name",
    "full_name",
    "phone",
    "email",
    "address",
    "street",
    "ssn",
    "date_of_birth",
    "dob",
)
PAGE_ROWS = 100_000

subjects_app = typer.Typer(
    name="subjects",
    help="Subject manifests: sync them from a roster, show one with its audit (SPEC §8).",
    no_args_is_help=True,
    add_completion=False,
)


class _Failed(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def subject_id_for(row_key: str, prefix: str) -> str | None:
    """``w-17`` → ``WORKER-17`` (prefix ``WORKER``); None when the key has no ``-`` part or the
    id would be invalid."""
    _, dash, rest = row_key.partition("-")
    if not dash or not rest:
        return None
    subject_id = f"{prefix}-{rest}"
    return subject_id if SUBJECT_ID.fullmatch(subject_id) else None


def _client(gateway: str | None, token: str | None, config: Path | None) -> httpx.Client:
    if gateway:
        base = gateway.rstrip("/")
    else:
        try:
            base = load_settings(config).url_of("gateway")
        except ConfigError as exc:
            raise _Failed(str(exc), EXIT_BAD_INPUT) from None
    return httpx.Client(base_url=base, headers=bearer(token), timeout=300.0)


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.TransportError as exc:
        raise _Failed(f"cannot reach the gateway at {client.base_url}: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            why = f"{error.get('code', '')}: {error.get('message', '')}"
        else:
            why = response.text[:300]
        raise _Failed(f"{method} {path}: HTTP {response.status_code} {why}")
    return body


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _row_keys(client: httpx.Client, dataset: str, key_column: str) -> Iterator[list[str]]:
    """Every non-null key of the dataset, in pages (keyset pagination on the key)."""
    column = _quote(key_column)
    keys_sql = (
        f"SELECT DISTINCT CAST({column} AS VARCHAR) AS k FROM {_quote(dataset)} "
        f"WHERE {column} IS NOT NULL"
    )
    after: str | None = None
    while True:
        where = "WHERE k > $1 " if after is not None else ""
        request = QueryRequest(
            sql=f"SELECT k FROM ({keys_sql}) {where}ORDER BY k LIMIT {PAGE_ROWS}",
            params=[after] if after is not None else [],
            limit=PAGE_ROWS,
        )
        body = _call(client, "POST", QUERY, json=request.model_dump(exclude_defaults=True))
        keys = [row[0] for row in body["rows"]]
        if keys:
            yield keys
        if len(keys) < PAGE_ROWS:
            return
        after = keys[-1]


def _fail(command: str, exc: _Failed) -> typer.Exit:
    typer.echo(f"lakehouse subjects {command}: {exc.message}", err=True)
    return typer.Exit(exc.code)


@subjects_app.command("sync")
def sync(
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", help="Dataset whose rows are subjects (e.g. workers).")
    ],
    subject_prefix: Annotated[
        str | None,
        typer.Option(
            "--subject-prefix",
            help="Subject id prefix: row key w-17 → <PREFIX>-17 (default: dataset, singular, "
            "upper case: WORKER).",
            show_default=False,
        ),
    ] = None,
    key_column: Annotated[
        str, typer.Option("--key-column", help="Column holding each row's key.")
    ] = "id",
    pii: Annotated[
        str | None,
        typer.Option(
            "--pii",
            help="Comma-separated PII columns (default: the dataset's columns among "
            + ", ".join(DEFAULT_PII)
            + ").",
            show_default=False,
        ),
    ] = None,
    retention_days: Annotated[
        int, typer.Option("--retention-days", help="Retention period of each subject's data.")
    ] = DEFAULT_RETENTION_DAYS,
    batch: Annotated[
        int, typer.Option("--batch", help=f"Manifests per request (1..{MAX_BATCH}).")
    ] = MAX_BATCH,
    gateway: GatewayOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
) -> None:
    """Create or update one manifest per row of a dataset (idempotent)."""
    try:
        validate_dataset_name(dataset)
    except InvalidInput as exc:
        raise _fail("sync", _Failed(exc.message, EXIT_BAD_INPUT)) from None
    if not 1 <= batch <= MAX_BATCH:
        raise _fail("sync", _Failed(f"--batch must be 1..{MAX_BATCH}", EXIT_BAD_INPUT))
    prefix = subject_prefix or dataset.removesuffix("s").upper()
    started = time.perf_counter()
    try:
        with _client(gateway, token, config) as client:
            detail = DatasetDetail.model_validate(_call(client, "GET", dataset_path(dataset)))
            columns = [f.name for f in detail.latest.schema_]
            if pii:
                fields = sorted({name.strip() for name in pii.split(",") if name.strip()})
            else:
                fields = sorted(name for name in DEFAULT_PII if name in columns)
            if not fields:
                raise _Failed(
                    f"dataset {dataset!r} has none of the default PII columns; name them "
                    "with --pii",
                    EXIT_BAD_INPUT,
                )
            totals = _sync_rows(
                client,
                dataset,
                key_column,
                prefix,
                fields,
                retention_days,
                batch,
                detail.latest.row_count,
            )
    except _Failed as exc:
        raise _fail("sync", exc) from None
    elapsed = time.perf_counter() - started
    typer.echo(
        f"subjects sync: {dataset} v{detail.latest.version}: {totals['rows']} rows -> "
        f"{totals['created']} created, {totals['updated']} updated, "
        f"{totals['unchanged']} unchanged, {totals['skipped']} skipped "
        f"(pii: {', '.join(fields)}) in {elapsed:.1f} s"
    )


def _sync_rows(
    client: httpx.Client,
    dataset: str,
    key_column: str,
    prefix: str,
    fields: list[str],
    retention_days: int,
    batch: int,
    expected_rows: int,
) -> dict[str, int]:
    totals = {"rows": 0, "created": 0, "updated": 0, "unchanged": 0, "skipped": 0}
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        if not pending:
            return
        body = orjson.dumps({"subjects": pending})
        result = SubjectBatchResult.model_validate(
            _call(
                client,
                "POST",
                SUBJECTS,
                content=body,
                headers={"Content-Type": "application/json"},
            )
        )
        totals["created"] += result.created
        totals["updated"] += result.updated
        totals["unchanged"] += result.unchanged
        progress.advance(task, len(pending))
        pending.clear()

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True)) as progress:
        task = progress.add_task(f"{dataset} → subjects", total=expected_rows)
        for keys in _row_keys(client, dataset, key_column):
            totals["rows"] += len(keys)
            for row_key in keys:
                subject_id = subject_id_for(row_key, prefix)
                if subject_id is None:
                    totals["skipped"] += 1
                    continue
                pending.append(
                    {
                        "subject_id": subject_id,
                        "dataset": dataset,
                        "key_column": key_column,
                        "row_key": row_key,
                        "pii_fields": fields,
                        "retention_days": retention_days,
                    }
                )
                if len(pending) >= batch:
                    flush()
        flush()
    return totals


@subjects_app.command("show")
def show(
    subject_id: Annotated[str, typer.Argument(metavar="SUBJECT_ID", show_default=False)],
    gateway: GatewayOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """A subject's manifest and the verification of its audit log."""
    try:
        with _client(gateway, token, config) as client:
            manifest = _call(client, "GET", subject_path(subject_id))
            verification = _call(client, "GET", verify_path(subject_id))
    except _Failed as exc:
        raise _fail("show", exc) from None
    if as_json:
        typer.echo(orjson.dumps({"manifest": manifest, "audit": verification}).decode())
        return
    console = Console(highlight=False)
    for key in ("subject_id", "dataset", "key_column", "row_key", "retention_days"):
        console.print(f"{key:<15} {manifest[key]}")
    console.print(f"{'pii_fields':<15} {', '.join(manifest['pii_fields'])}")
    state = "verified" if verification["verified"] else f"NOT VERIFIED: {verification['error']}"
    console.print(
        f"{'audit':<15} {verification['count']} rows, {verification['epochs']} epoch(s), "
        f"tip {verification['tip'][:16]}…, {state}"
    )
