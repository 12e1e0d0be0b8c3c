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

A CLI is a cold path: plain httpx, like ``lakehouse ingest``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from lakehouse_common.cli.ingest import DEFAULT_METADATA, DEFAULT_TEMPLATE, ingest
from lakehouse_common.cli.options import ConfigOption, TokenOption
from lakehouse_common.config import ConfigError, LakehouseSettings, load_settings
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
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=settings.url_of("gateway"), headers=headers, timeout=120)


def _loaded(client: httpx.Client, roster_name: str, rows: int) -> bool:
    """Whether `workers` is already this roster file, fully indexed."""
    dataset = client.get(f"/v1/catalog/datasets/{DATASET}")
    index = client.get(f"/v1/vectors/indexes/{INDEX}")
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
    query = {"sql": "SELECT state, count(*) AS n FROM workers GROUP BY state ORDER BY n DESC"}
    lines = [
        "Try it (or run scripts/demo.sh for the whole story):",
        f"  curl -s {gateway}/v1/matrix/search -H 'content-type: application/json' \\",
        f"       -d '{json.dumps(search)}'",
        f"  curl -s {gateway}/v1/matrix/playbooks/record -H 'content-type: application/json' \\",
        f"       -d '{json.dumps(record)}'",
        f"  curl -s {gateway}/v1/query -H 'content-type: application/json' \\",
        f"       -d '{json.dumps(query)}'",
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


def _post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post(path, json=body)
    if resp.status_code >= 400:
        raise DemoFailed(f"POST {path} → HTTP {resp.status_code}: {resp.text[:300]}")
    answer: dict[str, Any] = resp.json()
    return answer


def _search(client: httpx.Client, **body: Any) -> dict[str, Any]:
    return _post(client, "/v1/matrix/search", body)


def _show(title: str, answer: dict[str, Any]) -> None:
    typer.echo(f"\n{title}  (boosted={answer['boosted']}, injected={answer['injected']})")
    for hit in answer["results"]:
        meta = hit.get("metadata") or {}
        flags = ("boosted " if hit["boosted"] else "") + ("injected" if hit["injected"] else "")
        typer.echo(
            f"  {hit['rank']:>2}. {hit['id']:<9} distance {hit['distance']:.6f}  "
            f"{meta.get('role', '')}, {meta.get('city', '')} {meta.get('state', '')}  {flags}"
        )


def _check(ok: bool, what: str) -> None:
    typer.echo(f"  {'✓' if ok else '✗'} {what}")
    if not ok:
        raise DemoFailed(what)


def _forget_demo_recordings(client: httpx.Client) -> None:
    """Delete this story's own earlier recordings, so every run starts cold."""
    resp = client.get("/v1/matrix/playbooks", params={"role": FORKLIFT_ROLE})
    if resp.status_code != 200:
        raise DemoFailed(f"listing playbooks → HTTP {resp.status_code}: {resp.text[:300]}")
    for playbook in resp.json()["playbooks"]:
        if playbook["query_text"] == FORKLIFT_QUERY:
            client.delete(f"/v1/matrix/playbooks/{playbook['playbook_id']}").raise_for_status()


def tell_story(client: httpx.Client) -> None:
    _forget_demo_recordings(client)
    search = {"query_text": FORKLIFT_QUERY, "query_role": FORKLIFT_ROLE, "k": 5}
    cold = _search(client, **search, use_playbook=True)
    _show(f"1. Cold search: {FORKLIFT_QUERY!r} (query_role {FORKLIFT_ROLE!r})", cold)
    _check(cold["boosted"] == 0 and cold["injected"] == 0, "no playbook applies yet")
    top = cold["results"][0]

    recorded = _post(
        client,
        "/v1/matrix/playbooks/record",
        {"query_text": FORKLIFT_QUERY, "role": FORKLIFT_ROLE, "answer_id": top["id"], "score": 1.0},
    )
    typer.echo(
        f"\n2. The coordinator approves {top['id']}: recorded as {recorded['playbook_id']}, "
        "score 1.0"
    )

    warm = _search(client, **search, use_playbook=True)
    _show("3. Warm search, same query", warm)
    hit = next((h for h in warm["results"] if h["id"] == top["id"]), None)
    _check(hit is not None and hit["boosted"], f"{top['id']} is boosted")
    assert hit is not None
    typer.echo(
        f"  cold distance {top['distance']:.6f} → warm distance {hit['distance']:.6f} "
        f"(× {hit['distance'] / top['distance']:.6f})"
    )
    _check(abs(hit["distance"] - top["distance"] / 2) <= TOLERANCE, "the distance is halved")

    cnc = _search(client, query_text=CNC_QUERY, query_role=CNC_ROLE, k=5, use_playbook=True)
    _show(f"4. Another role: {CNC_QUERY!r} (query_role {CNC_ROLE!r})", cnc)
    _check(
        cnc["boosted"] == 0 and cnc["injected"] == 0,
        "the forklift recording does not touch a CNC query (role gate)",
    )

    first = [h["id"] for h in cold["results"]]
    swapped = _search(client, **search, exclude_ids=first)
    _show(f"5. Profile swap: the same search excluding {', '.join(first)}", swapped)
    overlap = set(first) & {h["id"] for h in swapped["results"]}
    _check(not overlap and len(swapped["results"]) > 0, "no overlap with the excluded ids")


@demo_app.command("story")
def story(config: ConfigOption = None, token: TokenOption = None) -> None:
    """Tell the learning story through the gateway; exit 1 if any step misbehaves."""
    settings = _settings(config)
    with _client(settings, token) as client:
        try:
            tell_story(client)
        except DemoFailed as exc:
            typer.echo(f"\ndemo failed: {exc}", err=True)
            raise typer.Exit(1) from None
        except httpx.TransportError as exc:
            typer.echo(f"\ndemo failed: the gateway is not reachable: {exc}", err=True)
            raise typer.Exit(1) from None
    typer.echo("\nThe story holds: playbooks teach the search, and only for their own role.")
