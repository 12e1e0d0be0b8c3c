"""`lakehouse loadgen` and `lakehouse multitier`: the load tools of SPEC §9 (issue 9).

Both print a human table on stdout and one JSON summary line on stderr, send load to loopback
only, are bounded in time and count, and exit 0 when every request (scenario) succeeded, 1 when
any failed, 2 when the run could not start (bad option, non-loopback URL, unreadable body file,
a stack without the roster). The drivers live in `lakehouse_common.ops.loadgen` and
`lakehouse_common.ops.scenario_mix`; docs/OPERATIONS.md ("Load tools") shows how to read them.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer

from lakehouse_common.cli.options import ConfigOption, TokenOption
from lakehouse_common.config import ConfigError, load_settings
from lakehouse_common.ops.loadgen import generate_load
from lakehouse_common.ops.scenario_mix import HarnessError, MixConfig, run_mix

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def _refuse(command: str, reason: str) -> typer.Exit:
    typer.echo(f"lakehouse {command}: {reason}", err=True)
    return typer.Exit(EXIT_BAD_INPUT)


def _emit(table: str, summary: dict[str, object]) -> None:
    typer.echo(table)
    sys.stdout.flush()
    typer.echo(orjson.dumps(summary).decode(), err=True)


def read_bodies(path: Path) -> list[bytes]:
    """The body mix of a body file: a `.jsonl` file is one body per non-blank line (sent in
    rotation); any other file is one body, sent byte for byte."""
    data = path.read_bytes()
    if path.suffix != ".jsonl":
        return [data]
    bodies = [line.strip() for line in data.splitlines() if line.strip()]
    if not bodies:
        raise ValueError(f"{path} holds no body (one JSON document per line)")
    return bodies


def _headers(values: list[str], has_body: bool, content_type: str) -> dict[str, str]:
    headers = {"Content-Type": content_type} if has_body else {}
    for value in values:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"a header is 'Name: value', not {value!r}")
        headers[name.strip()] = content.strip()
    return headers


def loadgen(
    url: Annotated[str, typer.Option("--url", help="Target URL (loopback only).")],
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", help="Closed-loop workers (connections).")
    ] = 10,
    duration: Annotated[
        float, typer.Option("--duration", "-d", help="Seconds to send for (time bound).")
    ] = 10.0,
    requests: Annotated[
        int | None,
        typer.Option("--requests", "-n", help="Stop after this many requests (count bound)."),
    ] = None,
    body_file: Annotated[
        Path | None,
        typer.Option(
            "--body-file",
            help="Request body; a .jsonl file is a body mix, one body per line, in rotation.",
        ),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option("--method", "-X", help="HTTP method (default: POST with a body, else GET)."),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help="Extra header 'Name: value' (repeatable)."),
    ] = None,
    content_type: Annotated[
        str, typer.Option("--content-type", help="Content-Type of the body.")
    ] = "application/json",
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request.")] = 30.0,
) -> None:
    """Closed-loop HTTP load on one URL: per-status counts, transport errors, RPS, latencies."""
    try:
        bodies: list[bytes | None] = list(read_bodies(body_file)) if body_file else [None]
        headers = _headers(header or [], body_file is not None, content_type)
    except OSError as exc:
        raise _refuse("loadgen", f"cannot read {body_file}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise _refuse("loadgen", str(exc)) from None
    verb = (method or ("POST" if body_file else "GET")).upper()
    try:
        summary = asyncio.run(
            generate_load(
                url,
                concurrency=concurrency,
                duration_s=duration,
                max_requests=requests,
                method=verb,
                bodies=bodies,
                headers=headers,
                timeout_s=timeout,
            )
        )
    except ValueError as exc:
        raise _refuse("loadgen", str(exc)) from None
    _emit(summary.table(), summary.to_dict())
    if summary.errors:
        raise typer.Exit(EXIT_FAILED)


def multitier(
    gateway: Annotated[
        str | None,
        typer.Option(
            "--gateway",
            envvar="LAKEHOUSE_GATEWAY_URL",
            help="Gateway base URL, loopback only (default: the configured gateway).",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Roster size the index must hold (lakehouse demo load --workers N); "
            "default: whatever it holds.",
            show_default=False,
        ),
    ] = None,
    duration: Annotated[
        float, typer.Option("--duration", "-d", help="Seconds to run the mix for.")
    ] = 30.0,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", help="Closed-loop scenario workers.")
    ] = 10,
    scenarios: Annotated[
        int | None,
        typer.Option("--scenarios", "-n", help="Stop after this many scenarios (count bound)."),
    ] = None,
    queries: Annotated[
        int, typer.Option("--queries", help="Distinct query texts in the pool.")
    ] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the query pool and drafts.")] = 9,
    index: Annotated[str, typer.Option("--index", help="vectord index of the roster.")] = (
        "workers"
    ),
    dataset: Annotated[
        str, typer.Option("--dataset", help="Dataset of the roster (queryd view).")
    ] = "workers",
    token: TokenOption = None,
    config: ConfigOption = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request.")] = 30.0,
) -> None:
    """The weighted scenario mix of SPEC §9 through the gateway; per-scenario failure rates."""
    if gateway is None:
        try:
            gateway = load_settings(config).url_of("gateway")
        except ConfigError as exc:
            raise _refuse("multitier", str(exc)) from None
    mix = MixConfig(
        gateway=gateway.rstrip("/"),
        concurrency=concurrency,
        duration_s=duration,
        max_scenarios=scenarios,
        workers=workers,
        index=index,
        dataset=dataset,
        queries=queries,
        seed=seed,
        token=token,
        timeout_s=timeout,
    )
    try:
        report = asyncio.run(run_mix(mix))
    except (ValueError, HarnessError) as exc:
        raise _refuse("multitier", str(exc)) from None
    _emit(report.table(), report.to_dict())
    if report.failures:
        raise typer.Exit(EXIT_FAILED)
