"""A bare FastAPI endpoint answering a fixed JSON body of N bytes: the baseline the benches
divide by (`python scripts/bench/bare_server.py PORT BYTES`, or `start(size)` from a bench)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI, Response

from lakehouse_common.ops.stack import free_port


def start(size: int) -> tuple[subprocess.Popen[bytes], str]:
    """This server in its own process on a free port; answers (process, URL) once it answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(Path(__file__)), str(port), str(size)])
    url = f"http://127.0.0.1:{port}/fixed"
    for _ in range(400):
        try:
            httpx.get(url, timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("bare server did not start")


def main() -> None:
    port, size = int(sys.argv[1]), int(sys.argv[2])
    body = b'{"pad":"' + b"x" * max(0, size - 10) + b'"}'
    app = FastAPI()

    @app.api_route("/fixed", methods=["GET", "POST"])
    async def fixed() -> Response:
        return Response(body, media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
