"""One smoke per daemon (SPEC §9 "Smoke chain", issue 9): its own ``/health``, then a few real
calls through the gateway, each with its answer checked, and one refusal in the error envelope.

Smokes are safe against a stack that holds real data: what they write is their own and is
removed again (a ``_smoke/`` object, a ``smoke-probe-*`` vector index), except the pathway
``smoke-pathway-1`` (recorded once, then found again on every run: pathwayd keeps no delete).
``run_smokes`` runs them in start order; the end-to-end story is :mod:`.story`.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Callable, Sequence
from typing import Any, Final

from lakehouse_common.contracts import (
    catalog,
    chat,
    embed,
    gateway,
    ingest,
    matrix,
    observe,
    pathways,
    query,
    storage,
    subjects,
    validate,
    vectors,
)
from lakehouse_common.ops.probes.tally import Probe
from lakehouse_common.tracing import TRACE_HEADER

__all__ = ["SMOKES", "run_smokes"]

FORKLIFT_QUERY: Final = "Need 3 Forklift Operators in Aurora IL"
SMOKE_PATHWAY: Final = {
    "pathway_id": "smoke-pathway-1",
    "demand_text": "Smoke test: need 1 Forklift Operator in Aurora IL",
    "role": "Smoke Test Role",
    "steps": [{"name": "search"}, {"name": "shortlist"}, {"name": "fill"}],
    "outcome": {"filled": True, "count": 1},
}


def _token() -> str:
    return secrets.token_hex(4)


def smoke_gateway(p: Probe) -> None:
    p.health("gateway")
    health = p.call("GET", gateway.HEALTH, f"GET {gateway.HEALTH} (aggregate)").json()
    down = {
        name: entry.get("status")
        for name, entry in health.get("daemons", {}).items()
        if entry.get("status") != "ok"
    }
    p.check(
        health.get("status") == "ok" and not down,
        "every daemon behind the gateway is ok",
        f"status {health.get('status')!r}, not ok: {down}",
    )
    trace = f"smoke-{_token()}"
    resp = p.call("GET", catalog.DATASETS, "a proxied call", headers={TRACE_HEADER: trace})
    p.check(
        resp.headers.get(TRACE_HEADER) == trace,
        f"the caller's {TRACE_HEADER} comes back on a proxied answer",
        f"got {resp.headers.get(TRACE_HEADER)!r}",
    )
    p.refused(
        "GET",
        gateway.area_path("smoke-no-such-area"),
        "a path no daemon owns → 404",
        status=404,
        code="not_found",
    )


def smoke_storaged(p: Probe) -> None:
    p.health("storaged")
    bucket = p.settings.storage.default_bucket
    key = f"_smoke/{_token()}.txt"
    body = f"lakehouse smoke {key} ✓\n".encode()
    path = storage.object_path(bucket, key)
    try:
        put = p.call(
            "PUT",
            path,
            f"PUT {path}",
            expect=(200, 201),
            content=body,
            headers={"content-type": "text/plain"},
        ).json()
        p.check(
            put.get("etag") == hashlib.sha256(body).hexdigest(),
            "its ETag is the sha256 of the content",
            f"etag {put.get('etag')!r}",
        )
        got = p.call("GET", path, "GET it back")
        p.check(got.content == body, "the same bytes come back", f"{len(got.content)} bytes")
        p.refused(
            "PUT",
            path,
            "a create-only PUT (If-None-Match: *) of an existing key → 409",
            status=409,
            code="conflict",
            content=b"x",
            headers={"If-None-Match": "*"},
        )
        listing = p.call(
            "GET", storage.bucket_path(bucket), "list by prefix", params={"prefix": key}
        ).json()
        keys = [o.get("key") for o in listing.get("objects", [])]
        p.check(keys == [key], "the listing names it", str(keys))
        p.call("DELETE", path, "DELETE it", expect=(200, 204))
        p.refused("GET", path, "GET after DELETE → 404", status=404, code="not_found")
    finally:
        p.quietly("DELETE", path)


def smoke_catalogd(p: Probe) -> None:
    p.health("catalogd")
    listing = p.call("GET", catalog.DATASETS, f"GET {catalog.DATASETS}").json()
    datasets = listing.get("datasets", [])
    p.check(listing.get("count") == len(datasets), f"{len(datasets)} datasets, count agrees")
    if datasets:
        first = datasets[0]
        detail = p.call(
            "GET", catalog.dataset_path(first["name"]), f"GET dataset {first['name']}"
        ).json()
        p.check(
            detail.get("latest", {}).get("version") == first.get("latest_version"),
            f"its latest manifest is version {first.get('latest_version')}",
        )
    else:
        p.tally.skip("a dataset's manifest", "no dataset yet")
    p.call("GET", subjects.GOVERNANCE, f"GET {subjects.GOVERNANCE} (subject policies)")
    p.refused(
        "GET",
        catalog.dataset_path("smoke_no_such_dataset"),
        "an unknown dataset → 404",
        status=404,
        code="not_found",
    )


def smoke_ingestd(p: Probe) -> None:
    p.health("ingestd")
    jobs = p.call("GET", ingest.JOBS, f"GET {ingest.JOBS}").json()
    p.check(jobs.get("count") == len(jobs.get("jobs", [])), f"{jobs.get('count')} index jobs")
    p.refused(
        "POST",
        ingest.ingest_path("smoke_rejected"),
        "a CSV without its required column → 422",
        status=422,
        code="invalid_request",
        params={"required": "id"},
        content=b"name\nAna\n",
        headers={"content-type": "text/csv"},
    )
    p.refused(
        "GET",
        catalog.dataset_path("smoke_rejected"),
        "…and nothing of it was committed (404)",
        status=404,
        code="not_found",
    )


def smoke_queryd(p: Probe) -> None:
    p.health("queryd")
    answer = p.call("POST", query.QUERY, "SELECT 1 AS one", json={"sql": "SELECT 1 AS one"}).json()
    p.check(
        answer.get("rows") == [[1]] and [c["name"] for c in answer.get("columns", [])] == ["one"],
        "answers rows [[1]] in column one",
        str(answer)[:200],
    )
    views = [v["name"] for v in p.call("GET", query.VIEWS, f"GET {query.VIEWS}").json()["views"]]
    if "workers" in views:
        count = p.call(
            "POST",
            query.QUERY,
            "SELECT count(*) FROM workers",
            json={"sql": "SELECT count(*) AS n FROM workers"},
        ).json()
        p.check(count["rows"][0][0] >= 1, f"the workers view holds {count['rows'][0][0]} rows")
    else:
        p.tally.skip("SELECT count(*) FROM workers", "no workers view (load the demo roster)")
    p.refused(
        "POST",
        query.QUERY,
        "a DROP statement → 400 (read-only)",
        status=400,
        code="invalid_input",
        json={"sql": "DROP TABLE workers"},
    )


def smoke_embedd(p: Probe) -> None:
    p.health("embedd")
    url = p.settings.url_of("embedd")
    answer = p.call(
        "POST",
        f"{url}{embed.EMBED}",
        "embed one text (embedd directly)",
        json={"texts": ["smoke test"]},
    ).json()
    vector = answer["vectors"][0]
    norm = math.sqrt(sum(x * x for x in vector))
    p.check(
        len(vector) == answer.get("dimension") and abs(norm - 1.0) < 1e-3,
        f"a unit vector of dimension {answer.get('dimension')} from {answer.get('model')}",
        f"{len(vector)} values, norm {norm:.6f}",
    )
    models = p.call("GET", embed.MODELS, f"GET {embed.MODELS}").json()
    p.check(models.get("default_model") == answer.get("model"), "the default model answered")
    p.refused(
        "POST",
        embed.EMBED,
        "no texts → 422",
        status=422,
        code="invalid_request",
        json={"texts": []},
    )


def smoke_vectord(p: Probe) -> None:
    p.health("vectord")
    base = vectors.index_path(f"smoke-probe-{_token()}")
    try:
        p.call("PUT", base, f"PUT {base} (dim 3)", expect=(200, 201), json={"dim": 3})
        items = [
            {"id": "a", "vector": [1.0, 0.0, 0.0], "metadata": {"n": 1}},
            {"id": "b", "vector": [0.0, 1.0, 0.0], "metadata": {"n": 2}},
            {"id": "c", "vector": [0.0, 0.0, 1.0], "metadata": {"n": 3}},
        ]
        added = p.call("POST", f"{base}/add", "add 3 items", json={"items": items}).json()
        p.check(added.get("count") == 3, "the index counts 3 items", str(added))
        hits = p.call(
            "POST", f"{base}/search", "search near a", json={"vector": [0.9, 0.1, 0.0], "k": 2}
        ).json()["results"]
        p.check(
            [h["id"] for h in hits] == ["a", "b"] and hits[0]["metadata"] == {"n": 1},
            "a then b, with a's metadata",
            str(hits),
        )
        item = p.call("GET", f"{base}/items/b", "GET item b").json()
        p.check(item.get("vector") == [0.0, 1.0, 0.0], "b's vector comes back", str(item))
        p.refused(
            "POST",
            f"{base}/search",
            "a query of the wrong dimension → 400",
            status=400,
            code="invalid_input",
            json={"vector": [1.0, 0.0], "k": 1},
        )
        p.refused("GET", f"{base}/items/nope", "an absent item → 404", status=404, code="not_found")
        p.call("DELETE", base, "DELETE the index")
    finally:
        p.quietly("DELETE", base)


def smoke_pathwayd(p: Probe) -> None:
    p.health("pathwayd")
    pathway_id = str(SMOKE_PATHWAY["pathway_id"])
    p.typed(
        f"record pathway {pathway_id} (201, or 200 when already there)",
        lambda c: c.pathways().record(SMOKE_PATHWAY),
    )
    stored = p.typed(
        f"GET {pathways.pathway_path(pathway_id)}", lambda c: c.pathways().get(pathway_id)
    )
    p.check(
        [s.name for s in stored.steps] == ["search", "shortlist", "fill"],
        "its steps come back in order",
    )
    advice = p.typed(
        "suggest the next step after search",
        lambda c: c.pathways().suggest(
            str(SMOKE_PATHWAY["demand_text"]), str(SMOKE_PATHWAY["role"]), steps_taken=["search"]
        ),
    )
    similar = [s.pathway.pathway_id for s in advice.pathways]
    next_step = advice.next_step.step if advice.next_step else None
    p.check(
        pathway_id in similar and next_step == "shortlist",
        "the smoke pathway is found and its next step is shortlist",
        f"pathways {similar}, next_step {next_step!r}",
    )
    p.refused(
        "POST",
        pathways.PATHWAYS,
        "a pathway without steps → 422",
        status=422,
        code="invalid_request",
        json={**SMOKE_PATHWAY, "pathway_id": None, "steps": []},
    )


def smoke_observerd(p: Probe) -> None:
    p.health("observerd")
    configured = list(p.settings.observe.streams)
    listing = p.typed(f"GET {observe.OBSERVATIONS}", lambda c: c.observe().streams())
    names = {s.name for s in listing.streams}
    p.check(
        set(configured) <= names,
        f"every configured stream is listed ({len(configured)})",
        f"missing {sorted(set(configured) - names)}",
    )
    if configured:
        stream = configured[0]
        page = p.typed(f"read a page of {stream}", lambda c: c.observe().read(stream, limit=1))
        p.check(page.count <= 1 and page.total >= page.count, f"{stream}: {page.total} records")
    if "smoke_unconfigured" not in configured:
        p.refused(
            "POST",
            observe.stream_path("smoke_unconfigured"),
            "a stream not in observe.streams → 400",
            status=400,
            code="unknown_stream",
            json={"event": {"smoke": True}},
        )


def smoke_matrixd(p: Probe) -> None:
    p.health("matrixd")
    workers = p.request("GET", vectors.index_path("workers"), "is there a workers index")
    if workers.status_code == 200:
        answer = p.typed(
            f"search {FORKLIFT_QUERY!r}", lambda c: c.matrix().search(FORKLIFT_QUERY, k=3)
        )
        results = answer.results
        distances = [r.distance for r in results]
        p.check(
            0 < len(results) <= 3
            and [r.rank for r in results] == list(range(len(results)))
            and distances == sorted(distances),
            f"{len(results)} ranked results, nearest first",
            str([r.model_dump() for r in results])[:200],
        )
    else:
        p.tally.skip("a staffing search", "no workers index (load the demo roster: make run)")
    p.typed(f"GET {matrix.PLAYBOOKS}", lambda c: c.matrix().list_playbooks())
    p.refused(
        "POST",
        matrix.SEARCH,
        "a search of an unknown index → 404",
        status=404,
        code="not_found",
        json={"query_text": "x", "index": "smoke-no-such-index"},
    )


def smoke_chatd(p: Probe) -> None:
    p.health("chatd")
    providers = p.call("GET", chat.PROVIDERS, f"GET {chat.PROVIDERS}").json()
    default = str(providers.get("default_model", ""))
    models = p.call("GET", chat.MODELS, f"GET {chat.MODELS} (OpenAI shape)").json()
    p.check(models.get("object") == "list", 'the model list is {"object":"list",…}')
    provider = default.split("/", 1)[0]
    status: dict[str, Any] = next(
        (s for s in providers.get("providers", []) if s.get("name") == provider), {}
    )
    if status.get("reachable"):
        reply = p.call(
            "POST",
            chat.CHAT,
            f"one chat call to {default}",
            json={
                "messages": [{"role": "user", "content": "Reply with the word ok."}],
                "max_tokens": 16,
            },
        ).json()
        p.check(isinstance(reply.get("content"), str), f"a reply from {reply.get('provider')}")
    else:
        p.tally.skip(
            f"a chat call to {default}",
            f"provider {provider!r} is not reachable ({status.get('last_error') or 'unknown'})",
        )
    p.refused(
        "POST",
        chat.CHAT,
        "a chat without messages → 422",
        status=422,
        code="invalid_request",
        json={"messages": []},
    )


def smoke_validatord(p: Probe) -> None:
    p.health("validatord")
    email = {"to": "ana@example.com", "subject": "Monday", "body": "Can you work Monday 7am?"}
    # The exact bytes of the answer are part of the wire format (SPEC §3): read them raw.
    ok = p.call(
        "POST",
        validate.VALIDATE,
        "validate a good email",
        json=validate.ValidateRequest(kind="email", payload=email).model_dump(exclude_none=True),
    )
    p.check(ok.content == b'{"valid":true,"errors":[]}', "it is valid", ok.text[:200])
    bad = p.typed(
        "validate an SMS carrying an SSN",
        lambda c: c.validate().validate("sms", {"to": "555-123-4567", "body": "SSN 123-45-6789"}),
    )
    errors = [e.to_wire() for e in bad.errors]
    p.check(
        bad.valid is False and [next(iter(e)) for e in errors] == ["Policy"],
        "it is invalid with one Policy error",
        str(errors)[:200],
    )
    sessions = p.typed(f"GET {validate.SESSIONS}", lambda c: c.validate().sessions(limit=1))
    p.check(sessions.count <= 1, f"{sessions.count} session record(s)")
    p.refused(
        "POST",
        validate.VALIDATE,
        "an unknown kind → 422",
        status=422,
        code="invalid_request",
        json={"kind": "fax", "payload": {}},
    )


SMOKES: Final[dict[str, Callable[[Probe], None]]] = {
    "storaged": smoke_storaged,
    "catalogd": smoke_catalogd,
    "ingestd": smoke_ingestd,
    "queryd": smoke_queryd,
    "embedd": smoke_embedd,
    "vectord": smoke_vectord,
    "pathwayd": smoke_pathwayd,
    "observerd": smoke_observerd,
    "matrixd": smoke_matrixd,
    "chatd": smoke_chatd,
    "validatord": smoke_validatord,
    "gateway": smoke_gateway,
}


def run_smokes(p: Probe, daemons: Sequence[str]) -> None:
    """The smokes of `daemons` (in the order given), one section each."""
    for name in daemons:
        with p.tally.section(f"[{name}] {p.settings.url_of(name)}"):
            SMOKES[name](p)
