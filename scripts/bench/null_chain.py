"""The matrix search's process chain doing no work: the ceiling the architecture allows.

Three FastAPI apps under uvicorn, each in its own process, called over aiohttp like the
daemons call each other: *front* forwards every request to *mid* and its answer back (the
gateway's buffered path), *mid* parses the JSON body, POSTs a body shaped like matrixd's
vectord request (two 384-d vectors as JSON) to *back*, parses the answer and answers a fixed
JSON body of the requested size; *back* parses the body and answers a fixed list of hits. No
middleware, validation, search, re-ranking or reporting: what remains is the cost of the hops.

`start(size)` from a bench answers the processes and the front URL once it answers; or
`python scripts/bench/null_chain.py ROLE PORT SIZE [NEXT_URL]` runs one process.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import httpx
import orjson
import uvicorn
from fastapi import FastAPI, Request, Response

from lakehouse_common.contracts.matrix import SEARCH
from lakehouse_common.ops.stack import free_port

_JSON = {"Content-Type": "application/json"}
_VECTOR = b"[" + b",".join([b"0.0510310363"] * 384) + b"]"
# matrixd's vectord request: the organic and the playbook search, one query vector each.
MID_TO_BACK = (
    b'{"searches":[{"index":"workers","vector":' + _VECTOR + b',"k":5},'
    b'{"index":"playbook_memory","vector":' + _VECTOR + b',"k":20,'
    b'"filter":{"role_norm":"forklift operator","index":"workers"},"missing_ok":true}]}'
)
_HIT = b'{"id":"w-0000001","distance":0.41,"metadata":{"role":"Forklift Operator","state":"IL"}}'
BACK_ANSWER = b'{"results":[[' + b",".join([_HIT] * 5) + b"],[" + _HIT + b"]]}"


def start(size: int) -> tuple[list[subprocess.Popen[bytes]], str]:
    """back, mid and front on free ports; answers (processes, front URL) once it answers."""
    procs: list[subprocess.Popen[bytes]] = []
    upstream = ""
    try:
        for role in ("back", "mid", "front"):  # each up before the next one calls it
            port = free_port()
            args = [sys.executable, str(Path(__file__)), role, str(port), str(size)]
            procs.append(subprocess.Popen([*args, upstream] if upstream else args))
            upstream = f"http://127.0.0.1:{port}"
            _wait_listening(port)
        url = f"{upstream}{SEARCH}"
        httpx.post(url, json={}, timeout=10).raise_for_status()
    except BaseException:
        for proc in procs:
            proc.kill()
        raise
    return procs, url


def _wait_listening(port: int) -> None:
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"null chain: nothing listens on port {port}")


def _app(role: str, size: int, upstream: str) -> FastAPI:
    app = FastAPI()
    sessions: list[aiohttp.ClientSession] = []

    def session() -> aiohttp.ClientSession:
        if not sessions:
            sessions.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)))
        return sessions[0]

    if role == "front":

        @app.api_route("/{path:path}", methods=["GET", "POST"])
        async def forward(request: Request, path: str) -> Response:
            body = await request.body()
            async with session().request(
                request.method, f"{upstream}/{path}", data=body, headers=_JSON
            ) as answer:
                content = await answer.read()
            return Response(content, status_code=answer.status, media_type="application/json")

    elif role == "mid":
        fixed = b'{"pad":"' + b"x" * max(0, size - 10) + b'"}'

        @app.post(SEARCH)
        async def search(request: Request) -> Response:
            orjson.loads(await request.body())
            async with session().post(f"{upstream}/search", data=MID_TO_BACK, headers=_JSON) as r:
                orjson.loads(await r.read())
            return Response(fixed, media_type="application/json")

    else:

        @app.post("/search")
        async def back(request: Request) -> Response:
            orjson.loads(await request.body())
            return Response(BACK_ANSWER, media_type="application/json")

    return app


def main() -> None:
    role, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    upstream = sys.argv[4] if len(sys.argv) > 4 else ""
    uvicorn.run(
        _app(role, size, upstream),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,  # above aiohttp's 15 s pool keep-alive, as in the daemons
    )


if __name__ == "__main__":
    main()
