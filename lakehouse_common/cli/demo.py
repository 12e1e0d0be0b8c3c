"""`lakehouse demo`: the main job's data and the learning story, through the gateway (issue 5).

- ``demo load`` (run by ``make run`` after the stack is up): generates the deterministic demo
  roster (default 20 000 workers) under ``<data_dir>/demo/``, ingests it as dataset ``workers``
  and indexes it into the vectord index ``workers`` with a live bar, then prints example calls.
  It is idempotent: when the latest ``workers`` version came from the same roster file and the
  index holds every row, nothing is redone.
- ``demo story`` (``scripts/demo.sh``): a cold search, a playbook recording, the warm search with
  the recorded answer's distance halved, the role gate (a CNC query is not influenced by the
  forklift recording) and an ``exclude_ids`` swap. Each step checks what it shows and the command
  exits 1 if the system does not behave as told, so the story doubles as a smoke test.

A CLI is a cold path: the load's checks use plain httpx, like ``lakehouse ingest``; the story
talks to matrixd through its typed client (``lakehouse_common.contracts.matrix``), as the
``lakehouse probe story`` step that tells it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import httpx
import typer

from lakehouse_common.cli.ingest import DEFAULT_METADATA, DEFAULT_TEMPLATE, ingest
from lakehouse_common.cli.options import ConfigOption, TokenOption
from lakehouse_common.config import ConfigError, LakehouseSettings, load_settings
from lakehouse_common.contracts import catalog, query, vectors
from lakehouse_common.contracts import matrix as matrix_contract
from lakehouse_common.contracts.matrix import MatrixClient, SearchResponse
from lakehouse_common.errors import LakehouseError
from lakehouse_common.http import bearer
from lakehouse_common.ops.gateway import gateway_clients, refusal, unreachable
from lakehouse_common.ops.roster import DEFAULT_SEED, write_roster

demo_app = typer.Typer(
    help="The demo roster and the learning story (make run, scripts/demo.sh).",
    no_args_is_help=True,
)

DATASET = INDEX = "workers"
FORKLIFT_QUERY = "Need 3 Forklift Operators in Aurora IL"
FORKLIFT_ROLE = "Forklift Operator"
CNC_QUERY = "Need 2 CNC Operators in Detroit MI"
CNC_ROLE = "CNC Operator"
# The exact-halving check tolerates float32 storage of the vectors (SPEC: to 1e-6).
TOLERANCE = 1e-6


class DemoFailed(Exception):
    """A step of the story did not behave as the story says."""


def _settings(config: Path | None) -> LakehouseSettings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        typer.echo(f"lakehouse demo: {exc}", err=True)
        raise typer.Exit(2) from None


def _client(settings: LakehouseSettings, token: str | None) -> httpx.Client:
    return httpx.Client(base_url=settings.url_of("gateway"), headers=bearer(token), timeout=120)


def _loaded(client: httpx.Client, roster_name: str, rows: int) -> bool:
    """Whether `workers` is already this roster file, fully indexed."""
    dataset = client.get(catalog.dataset_path(DATASET))
    index = client.get(vectors.index_path(INDEX))
    if dataset.status_code != 200 or index.status_code != 200:
        return False
    latest = dataset.json()["latest"]
    return bool(
        latest.get("source", {}).get("filename") == roster_name
        and latest["row_count"] == rows
        and index.json().get("count") == rows
    )


def example_calls(gateway: str) -> str:
    search = {
        "query_text": FORKLIFT_QUERY,
        "query_role": FORKLIFT_ROLE,
        "k": 5,
        "use_playbook": True,
    }
    record = {
        "query_text": FORKLIFT_QUERY,
        "role": FORKLIFT_ROLE,
        "answer_id": "<an id from the search>",
        "score": 1.0,
    }
    sql = {"sql": "SELECT state, count(*) AS n FROM workers GROUP BY state ORDER BY n DESC"}
    lines = ["Try it (or run scripts/demo.sh for the whole story):"]
    for path, body in (
        (matrix_contract.SEARCH, search),
        (matrix_contract.RECORD, record),
        (query.QUERY, sql),
    ):
        lines += [
            f"  curl -s {gateway}{path} -H 'content-type: application/json' \\",
            f"       -d '{json.dumps(body)}'",
        ]
    return "\n".join(lines)


@demo_app.command("load")
def load(
    workers: Annotated[
        int, typer.Option("--workers", help="Roster size to generate and index.")
    ] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Roster seed.")] = DEFAULT_SEED,
    config: ConfigOption = None,
    token: TokenOption = None,
) -> None:
    """Generate, ingest and index the demo roster (idempotent), then print example calls."""
    if workers < 1:
        typer.echo("lakehouse demo load: --workers must be >= 1", err=True)
        raise typer.Exit(2)
    settings = _settings(config)
    roster = settings.data_dir / "demo" / f"workers-{workers}-seed{seed}.parquet"
    with _client(settings, token) as client:
        try:
            done = _loaded(client, roster.name, workers)
        except httpx.TransportError as exc:
            typer.echo(f"lakehouse demo load: the gateway is not reachable: {exc}", err=True)
            raise typer.Exit(1) from None
    if done:
        typer.echo(f"demo roster already loaded: {workers:,} workers in index {INDEX!r}")
    else:
        if not roster.exists():
            roster.parent.mkdir(parents=True, exist_ok=True)
            partial = roster.with_suffix(".partial")
            write_roster(partial, workers, seed)
            partial.replace(roster)
        ingest(
            roster,
            dataset=DATASET,
            config=config,
            token=token,
            index=INDEX,
            template=DEFAULT_TEMPLATE,
            metadata=DEFAULT_METADATA,
            gateway=None,
            format=None,
            mode="replace",
            required=None,
            timeout=1800.0,
            as_json=False,
            id_column="id",
        )
    typer.echo(example_calls(settings.url_of("gateway")))


def _show(title: str, answer: SearchResponse) -> None:
    typer.echo(f"\n{title}  (boosted={answer.boosted}, injected={answer.injected})")
    for hit in answer.results:
        meta = hit.metadata
        flags = ("boosted " if hit.boosted else "") + ("injected" if hit.injected else "")
        typer.echo(
            f"  {hit.rank:>2}. {hit.id:<9} distance {hit.distance:.6f}  "
            f"{meta.get('role', '')}, {meta.get('city', '')} {meta.get('state', '')}  {flags}"
        )


def _check(ok: bool, what: str) -> None:
    typer.echo(f"  {'✓' if ok else '✗'} {what}")
    if not ok:
        raise DemoFailed(what)


async def _forget_demo_recordings(matrix: MatrixClient) -> None:
    """Delete this story's own earlier recordings, so every run starts cold."""
    listing = await matrix.list_playbooks(role=FORKLIFT_ROLE)
    for playbook in listing.playbooks:
        if playbook.query_text == FORKLIFT_QUERY:
            await matrix.delete_playbook(playbook.playbook_id)


async def tell_story(matrix: MatrixClient) -> None:
    """The story through matrixd's typed client: `DemoFailed` when a step misbehaves or is
    refused; a transport failure (:func:`unreachable`) propagates as it is."""
    try:
        await _tell_story(matrix)
    except LakehouseError as exc:
        if unreachable(exc):
            raise
        raise DemoFailed(refusal(exc)) from exc


async def _tell_story(matrix: MatrixClient) -> None:
    await _forget_demo_recordings(matrix)
    cold = await matrix.search(FORKLIFT_QUERY, query_role=FORKLIFT_ROLE, k=5, use_playbook=True)
    _show(f"1. Cold search: {FORKLIFT_QUERY!r} (query_role {FORKLIFT_ROLE!r})", cold)
    _check(cold.boosted == 0 and cold.injected == 0, "no playbook applies yet")
    top = cold.results[0]

    recorded = await matrix.record_playbook(FORKLIFT_QUERY, FORKLIFT_ROLE, top.id, 1.0)
    typer.echo(
        f"\n2. The coordinator approves {top.id}: recorded as {recorded.playbook_id}, score 1.0"
    )

    warm = await matrix.search(FORKLIFT_QUERY, query_role=FORKLIFT_ROLE, k=5, use_playbook=True)
    _show("3. Warm search, same query", warm)
    hit = next((h for h in warm.results if h.id == top.id), None)
    _check(hit is not None and hit.boosted, f"{top.id} is boosted")
    assert hit is not None
    typer.echo(
        f"  cold distance {top.distance:.6f} → warm distance {hit.distance:.6f} "
        f"(× {hit.distance / top.distance:.6f})"
    )
    _check(abs(hit.distance - top.distance / 2) <= TOLERANCE, "the distance is halved")

    cnc = await matrix.search(CNC_QUERY, query_role=CNC_ROLE, k=5, use_playbook=True)
    _show(f"4. Another role: {CNC_QUERY!r} (query_role {CNC_ROLE!r})", cnc)
    _check(
        cnc.boosted == 0 and cnc.injected == 0,
        "the forklift recording does not touch a CNC query (role gate)",
    )

    first = [h.id for h in cold.results]
    swapped = await matrix.search(FORKLIFT_QUERY, query_role=FORKLIFT_ROLE, k=5, exclude_ids=first)
    _show(f"5. Profile swap: the same search excluding {', '.join(first)}", swapped)
    overlap = set(first) & {h.id for h in swapped.results}
    _check(not overlap and len(swapped.results) > 0, "no overlap with the excluded ids")


async def _story_via(gateway: str, token: str | None) -> None:
    async with gateway_clients(gateway, token) as clients:
        await tell_story(clients.matrix())


@demo_app.command("story")
def story(config: ConfigOption = None, token: TokenOption = None) -> None:
    """Tell the learning story through the gateway; exit 1 if any step misbehaves."""
    settings = _settings(config)
    try:
        asyncio.run(_story_via(settings.url_of("gateway"), token))
    except DemoFailed as exc:
        typer.echo(f"\ndemo failed: {exc}", err=True)
        raise typer.Exit(1) from None
    except LakehouseError as exc:  # only a transport failure gets here (tell_story)
        typer.echo(f"\ndemo failed: the gateway is not reachable: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo("\nThe story holds: playbooks teach the search, and only for their own role.")
